"""Login, logout and the pages around them."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json

from portal.core.auth import lockout, tokens
from portal.errors import TooManyRequests, Unauthorized
from portal.store import journal, radius
from portal.store.models import Subscriber
from portal.web import auth, branding
from portal.web.pages import render
from portal.web.request import client_address, credentials

bp = Blueprint("login")

# Compared against when the username does not exist, so unknown and wrong
# password take the same path and time.
_DUMMY = "x" * 32


@bp.get("/customer/login")
async def login_page(request: Request) -> HTTPResponse:
    brand = await branding.for_host(request)
    return html(render("login.html", brand=brand))


@bp.get("/customer/")
async def dashboard_page(request: Request) -> HTTPResponse:
    brand = await branding.for_host(request)
    return html(render("dashboard.html", brand=brand))


@bp.get("/")
async def root(request: Request) -> HTTPResponse:
    return html("", status=302, headers={"Location": "/customer/login"})


@bp.get("/customer/api/branding")
async def host_branding(request: Request) -> HTTPResponse:
    return json((await branding.for_host(request)).as_json())


@bp.post("/customer/api/login")
async def login(request: Request) -> HTTPResponse:
    username, password = credentials(request)
    if len(username) > 64 or len(password) > 128:
        raise Unauthorized("invalid_credentials", "wrong username or password")
    ip = client_address(request)
    now = datetime.now(UTC)
    until = await lockout.check(ip, now)
    if until is not None:
        raise _locked(until, now)
    stored = await radius.password_of(username)
    ok = hmac.compare_digest((stored or _DUMMY).encode(), password.encode()) and stored is not None
    sub = await Subscriber.get_or_none(username=username) if ok else None
    if sub is None or sub.status != "active":
        until = await lockout.record_failure(ip, username, now)
        if until is not None:
            raise _locked(until, now)
        raise Unauthorized("invalid_credentials", "wrong username or password")
    token, claims = tokens.issue(request.app.ctx.jwt_key, username,
                                 request.app.ctx.config.get("portal", "token_days"), now)
    from tortoise.transactions import in_transaction

    async with in_transaction() as tx:
        await journal.audit(tx, f"customer:{username}", "login", username, ip=ip)
    return json({"token": token, "token_type": "Bearer", "username": username,
                 "expires_at": claims.expires_at.isoformat()})


def _locked(until: datetime, now: datetime) -> TooManyRequests:
    seconds = max(1, int((until - now).total_seconds()) + 1)
    return TooManyRequests(
        "locked_out", f"too many failed logins from your address; try again in "
        f"{_human(seconds)}", retry_after=seconds,
    )


def _human(seconds: int) -> str:
    if seconds >= 3600:
        return f"{(seconds + 3599) // 3600} hour(s)"
    return f"{(seconds + 59) // 60} minute(s)"


@bp.post("/customer/api/logout")
@auth.customer
async def logout(request: Request) -> HTTPResponse:
    await tokens.revoke(request.ctx.claims)
    return json({"ok": True})
