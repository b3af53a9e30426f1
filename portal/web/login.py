"""Login, logout and the pages around them."""

from __future__ import annotations

from datetime import UTC, datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json

from portal.core import language as language_case
from portal.core.auth import login as login_case
from portal.web import apidoc, auth, branding
from portal.web.pages import render
from portal.web.request import client_address, credentials

bp = Blueprint("login")

@bp.get("/customer/login")
async def login_page(request: Request) -> HTTPResponse:
    brand = await branding.for_host(request)
    return html(render("login.html", brand=brand))


@bp.get("/customer/")
async def dashboard_page(request: Request) -> HTTPResponse:
    brand = await branding.for_host(request)
    return html(render("dashboard.html", brand=brand))


@bp.get("/customer/api/branding")
async def host_branding(request: Request) -> HTTPResponse:
    return json((await branding.for_host(request)).as_json())


@bp.post("/customer/api/login")
@apidoc.body(apidoc.obj(("username", "password"), username=apidoc.STRING,
                          password=apidoc.STRING))
async def login(request: Request) -> HTTPResponse:
    username, password = credentials(request)
    issued = await login_case.customer_login(
        username, password, client_address(request), datetime.now(UTC),
        request.app.ctx.keyring, request.app.ctx.config.get("portal", "token_days"),
        request.app.ctx.lockout_policy)
    # The first login stores the browser's language (Accept-Language) when the subscriber
    # has chosen none; the answer gains the language the portal will speak.
    language = await language_case.at_login(username, request.headers.get("accept-language"))
    return json({"token": issued.token, "token_type": "Bearer", "username": username,
                 "expires_at": issued.claims.expires_at.isoformat(), "language": language})


@bp.post("/customer/api/logout")
@auth.customer
async def logout(request: Request) -> HTTPResponse:
    await login_case.logout(request.ctx.claims, datetime.now(UTC))
    return json({"ok": True})
