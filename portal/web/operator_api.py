"""The operator JSON API (/operator/api): login, tickets, subscribers and their actions,
enforcement problems. The console's pages (portal/web/console.py) call only this.

Operator tokens (type=operator) are refused by customer routes and customer
tokens by these: tokens.decode checks the type before anything else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any
from urllib.parse import unquote

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from portal.core import console, operators, tickets
from portal.core.auth import login as login_case
from portal.core.auth import second_factor, tokens
from portal.errors import PortalError, Unauthorized
from portal.store import db
from portal.store.models import Operator
from portal.web import apidoc, qr
from portal.web.auth import bearer_token
from portal.web.request import client_address, credentials, json_body

bp = Blueprint("operator_api")
Handler = Callable[..., Awaitable[Any]]


# The revocation check and the operator (with its token_epoch) in one round trip.
_AUTH_SQL = ("SELECT o.*, EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?) AS revoked"
             " FROM operators o WHERE o.username = ?")


def operator(handler: Handler, also: tuple[str, ...] = ()) -> Handler:
    """The route needs an operator session (or one of the token types `also` names)."""
    @wraps(handler)
    async def wrapped(request: Request, *args: Any, **kwargs: Any) -> Any:
        claims = tokens.decode(request.app.ctx.keyring, bearer_token(request), "operator",
                               datetime.now(UTC), also=also)
        request.app.ctx.limiter.hit_subscriber("operator", claims.username)
        rows = await db.fetch_indexed(_AUTH_SQL, [claims.jti, claims.username])
        row = dict(rows[0]) if rows else None
        if row is not None and row.pop("revoked"):
            raise Unauthorized("token_revoked", "you have logged out, please log in again")
        if row is None and await tokens.is_revoked(claims.jti):
            raise Unauthorized("token_revoked", "you have logged out, please log in again")
        if row is not None:
            row["active"] = bool(row["active"])
            if isinstance(row["created_at"], str):
                row["created_at"] = datetime.fromisoformat(row["created_at"])
        op = Operator._init_from_db(**row) if row is not None else None
        if op is None or not op.active:
            raise Unauthorized("account_unavailable", "this operator account is not available")
        if claims.epoch != op.token_epoch:  # password changed, disabled or signed out since
            raise tokens.signed_out()
        request.ctx.claims = claims
        request.ctx.operator = op
        request.ctx.scope = await operators.scope_of(op)
        return await handler(request, *args, **kwargs)

    return apidoc.secured(wrapped)


def operator_or_enrolling(handler: Handler) -> Handler:
    """Also open to an admin's enrollment-only token (require_totp_for_admins, no second
    factor yet): the two steps that turn one on, nothing else."""
    return operator(handler, also=(tokens.OPERATOR_ENROLL,))


@bp.on_response
async def _no_store(request: Request, response: HTTPResponse) -> None:
    response.headers.setdefault("Cache-Control", "no-store")


def _code(request: Request) -> str:
    """The optional "code" of a JSON body: the digits of the operator's TOTP app."""
    code = json_body(request).get("code") or ""
    if not isinstance(code, str):
        raise PortalError("invalid_code", "code must be the 6 digits of your app", 422)
    return code


@bp.post("/operator/api/login")
@apidoc.operation(
    "Operator login",
    "Password, and the TOTP `code` once two-step sign-in is on. Answers `token` (the "
    "console session). An admin who must use a code (`require_totp_for_admins`) and has "
    "none yet gets `totp_required: true` and an `enroll_token` instead, good for 10 minutes "
    "and only for POST /operator/api/me/totp and /operator/api/me/totp/confirm, whose "
    "answer is the session's token.",
    body=apidoc.obj(("username", "password"), username=apidoc.STRING,
                    password=apidoc.STRING, code=apidoc.STRING),
    responses={200: "a token, or an enrollment-only token", 401: "wrong username, "
               "password or code", 429: "locked out, or logins busy", 503: "try again"})
async def login(request: Request) -> HTTPResponse:
    username, password = credentials(request)
    code = _code(request)
    config = request.app.ctx.config
    issued, op = await login_case.operator_login(
        username, password, client_address(request), datetime.now(UTC),
        request.app.ctx.keyring, config.get("portal", "token_days"),
        request.app.ctx.lockout_policy, code=code,
        require_totp_for_admins=bool(config.get("portal", "require_totp_for_admins")))
    reseller = await op.reseller if op.reseller_id else None  # type: ignore[attr-defined]
    if issued.claims.type == tokens.OPERATOR_ENROLL:
        # Not a session: no "token" key, so no client mistakes it for one.
        return json({"totp_required": True, "enroll_token": issued.token,
                     "token_type": "Bearer", "username": op.username, "role": op.role,
                     "expires_at": issued.claims.expires_at.isoformat()})
    return json({"token": issued.token, "token_type": "Bearer", "username": op.username,
                 "reseller": reseller.name if reseller else None, "role": op.role,
                 "expires_at": issued.claims.expires_at.isoformat()})


@bp.get("/operator/api/me")
@operator
async def me(request: Request) -> HTTPResponse:
    op = request.ctx.operator
    reseller = await op.reseller if op.reseller_id else None
    return json({"username": op.username, "role": op.role,
                 "reseller": reseller.name if reseller else None,
                 "totp": bool(op.totp_secret),
                 "may_act": operators.may(op.role, "subscriber.write")})


@bp.post("/operator/api/me/totp")
@apidoc.operation(
    "Start two-step sign-in (or replace it)",
    "Makes a new TOTP secret, pending until confirmed: answers it as text, as an otpauth:// "
    "URI and as an SVG QR code. An operator who has two-step sign-in already sends a valid "
    "current code. Codes count toward the login lockout. Also open to the enrollment-only "
    "token a login answers (`enroll_token`) to an admin who must use a code and has none.",
    body=apidoc.obj((), code=apidoc.STRING),
    responses={200: "the pending secret", 422: "code missing or not valid",
               429: "locked out"})
@operator_or_enrolling
async def totp_begin(request: Request) -> HTTPResponse:
    pending = await second_factor.begin(request.ctx.operator, _code(request),
                                        client_address(request), datetime.now(UTC),
                                        request.app.ctx.lockout_policy)
    return json({"secret": pending.secret, "uri": pending.uri, "qr_svg": qr.svg(pending.uri)})


@bp.post("/operator/api/me/totp/confirm")
@apidoc.operation(
    "Turn the pending two-step secret on",
    "With a valid code from the new secret: from now on a login needs a code, every other "
    "session is signed out, and this one continues with the token answered here (with an "
    "enrollment-only token: the console session starts with it).",
    body=apidoc.obj(("code",), code=apidoc.STRING),
    responses={200: "on; a new token", 409: "nothing pending", 422: "code not valid",
               429: "locked out"})
@operator_or_enrolling
async def totp_confirm(request: Request) -> HTTPResponse:
    config = request.app.ctx.config
    issued = await second_factor.confirm(
        request.ctx.operator, _code(request), client_address(request), datetime.now(UTC),
        request.app.ctx.keyring, config.get("portal", "token_days"),
        request.app.ctx.lockout_policy)
    return json({"totp": True, "token": issued.token, "token_type": "Bearer",
                 "expires_at": issued.claims.expires_at.isoformat()})


@bp.post("/operator/api/logout")
@operator
async def logout(request: Request) -> HTTPResponse:
    await login_case.logout(request.ctx.claims, datetime.now(UTC))
    return json({"ok": True})


def _hours(text: str | None) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise PortalError("invalid_age", "min_age_hours is a whole number of hours", 422)
    return int(text)


@bp.get("/operator/api/tickets")
@operator
async def list_tickets(request: Request) -> HTTPResponse:
    return json({"tickets": await tickets.operator_list(
        request.args.get("status") or None, scope=request.ctx.scope,
        reseller=request.args.get("reseller") or None,
        min_age_hours=_hours(request.args.get("min_age_hours")))})


@bp.get("/operator/api/tickets/<ticket_id:int>")
@operator
async def show(request: Request, ticket_id: int) -> HTTPResponse:
    ticket = await tickets.get_ticket(ticket_id, request.ctx.scope)
    return json(await tickets.thread_json(ticket, for_operator=True))


@bp.post("/operator/api/tickets/<ticket_id:int>/reply")
@apidoc.body(apidoc.obj(("message",), message=apidoc.STRING, internal=apidoc.BOOLEAN))
@operator
async def reply(request: Request, ticket_id: int) -> HTTPResponse:
    body = json_body(request)
    internal = body.get("internal", False)
    if not isinstance(internal, bool):
        raise PortalError("invalid_internal", "internal must be true or false", 422)
    ticket = await tickets.operator_reply(request.ctx.operator.username, ticket_id,
                                          body.get("message"), internal, client_address(request),
                                          scope=request.ctx.scope)
    return json(await tickets.thread_json(ticket, for_operator=True))


@bp.post("/operator/api/tickets/<ticket_id:int>/close")
@operator
async def close(request: Request, ticket_id: int) -> HTTPResponse:
    ticket = await tickets.close(request.ctx.operator.username, ticket_id,
                                 client_address(request), scope=request.ctx.scope)
    return json(await tickets.thread_json(ticket, for_operator=True))


@bp.get("/operator/api/subscribers")
@operator
async def search(request: Request) -> HTTPResponse:
    return json({"subscribers": await console.search(request.args.get("q") or "",
                                                     request.ctx.scope)})


@bp.get("/operator/api/subscribers/<username:str>")
@operator
async def subscriber(request: Request, username: str) -> HTTPResponse:
    # Sanic hands path parameters over still percent-encoded (%40 for @).
    sub = await console.subscriber_in_scope(unquote(username), request.ctx.scope)
    return json(await console.view(sub, datetime.now(UTC), request.app.ctx.config))


@bp.get("/operator/api/subscribers/<username:str>/audit")
@operator
async def audit(request: Request, username: str) -> HTTPResponse:
    return json({"audit": await console.audit(unquote(username), request.ctx.scope)})


@bp.get("/operator/api/subscribers/<username:str>/notifications")
@apidoc.operation(
    "A subscriber's notifications",
    "Newest first, as `ispedge notifications log`: event, channel, target, state, "
    "attempts, last_error, created_at, sent_at, resend_of. Every role may read it; "
    "`limit` (1-200, default 50).",
    responses={200: "the log", 404: "no such subscriber in scope", 422: "invalid limit"})
@operator
async def notification_log(request: Request, username: str) -> HTTPResponse:
    limit = request.args.get("limit") or "50"
    if not (limit.isascii() and limit.isdigit() and len(limit) <= 3
            and 0 < int(limit) <= console.LOG_MAX):
        raise PortalError("invalid_limit", f"limit is a whole number from 1 to "
                          f"{console.LOG_MAX}", 422)
    return json({"notifications": await console.notification_log(
        unquote(username), request.ctx.scope, int(limit))})


ACTION_BODY = apidoc.obj(
    (), amount={"type": ["string", "number"]}, reference=apidoc.STRING,
    paid_by={"type": "string", "enum": ["wallet", "cash", "free"]}, plan_id=apidoc.INTEGER,
    status={"type": "string", "enum": ["active", "disabled"]}, password=apidoc.STRING,
    notification_id=apidoc.INTEGER)


@bp.post("/operator/api/subscribers/<username:str>/actions/<action:str>")
@apidoc.operation(
    "Act on a subscriber (admin)",
    "action: credit {amount, reference}, renew {paid_by, reference}, set_plan {plan_id}, "
    "set_status {status}, set_password {password}, sign_out {} or resend "
    "{notification_id} (a copy of one of this subscriber's notifications, queued now; 409 "
    "while the message is still on its way). Send an Idempotency-Key "
    "header: a repeated request with the same key replays the first answer (replayed: "
    "true) and never acts twice.", body=ACTION_BODY,
    responses={200: "done (or replayed)", 403: "role",
               404: "no such subscriber (or notification) in scope",
               409: "the notification is still being sent", 422: "invalid"})
@operator
async def act(request: Request, username: str, action: str) -> HTTPResponse:
    body = json_body(request) if request.body else {}
    key = console.check_key(request.headers.get("idempotency-key"))
    result, replayed = await console.act(
        request.ctx.operator, request.ctx.scope, unquote(username), action, body, key,
        client_address(request), datetime.now(UTC))
    return json(result | {"replayed": replayed})


@bp.get("/operator/api/problems")
@operator
async def problems(request: Request) -> HTTPResponse:
    """What `ispedge enforcer status --problems` shows, limited to the operator's scope
    (subscribers outside it are left out; unowned NASes only for the ISP's own staff)."""
    source = getattr(request.app.ctx, "problems", None)
    if source is None:
        raise PortalError("problems_unavailable", "enforcement status is not available in "
                          "this process", 503, retry_after=60)
    rows = await source()
    scope = request.ctx.scope
    if scope is not None:
        visible = await console.usernames_in(scope)
        rows = [r for r in rows if r["username"] in visible]
    return json({"problems": rows})
