"""The operator JSON API (/operator/api): login and tickets.

Operator tokens (type=operator) are refused by customer routes and customer
tokens by these: tokens.decode checks the type before anything else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from portal.core import operators, tickets
from portal.core.auth import login as login_case
from portal.core.auth import tokens
from portal.errors import PortalError, Unauthorized
from portal.store import db
from portal.store.models import Operator
from portal.web import apidoc
from portal.web.auth import bearer_token
from portal.web.request import client_address, credentials, json_body

bp = Blueprint("operator_api")
Handler = Callable[..., Awaitable[Any]]


# The revocation check and the operator (with its token_epoch) in one round trip.
_AUTH_SQL = ("SELECT o.*, EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?) AS revoked"
             " FROM operators o WHERE o.username = ?")


def operator(handler: Handler) -> Handler:
    @wraps(handler)
    async def wrapped(request: Request, *args: Any, **kwargs: Any) -> Any:
        claims = tokens.decode(request.app.ctx.keyring, bearer_token(request), "operator",
                               datetime.now(UTC))
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


@bp.on_response
async def _no_store(request: Request, response: HTTPResponse) -> None:
    response.headers.setdefault("Cache-Control", "no-store")


@bp.post("/operator/api/login")
@apidoc.body(apidoc.obj(("username", "password"), username=apidoc.STRING,
                          password=apidoc.STRING))
async def login(request: Request) -> HTTPResponse:
    username, password = credentials(request)
    issued, op = await login_case.operator_login(
        username, password, client_address(request), datetime.now(UTC),
        request.app.ctx.keyring, request.app.ctx.config.get("portal", "token_days"),
        request.app.ctx.lockout_policy)
    reseller = await op.reseller if op.reseller_id else None  # type: ignore[attr-defined]
    return json({"token": issued.token, "token_type": "Bearer", "username": op.username,
                 "reseller": reseller.name if reseller else None,
                 "expires_at": issued.claims.expires_at.isoformat()})


@bp.post("/operator/api/logout")
@operator
async def logout(request: Request) -> HTTPResponse:
    await login_case.logout(request.ctx.claims, datetime.now(UTC))
    return json({"ok": True})


@bp.get("/operator/api/tickets")
@operator
async def list_tickets(request: Request) -> HTTPResponse:
    return json({"tickets": await tickets.operator_list(request.args.get("status") or None,
                                                        scope=request.ctx.scope)})


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
