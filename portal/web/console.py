"""The operator console's pages (/operator/...) and the panel's landing page (/).

Pages are shells: no data is rendered into them except the brand (by Host, as the
portal's pages) and the id or username from the URL; static/operator/console.js
fills them from /operator/api with the operator's bearer token (localStorage, the
Authorization header; no cookies). The same CSP and headers as every portal page.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html

from portal.web import branding
from portal.web.pages import render

bp = Blueprint("console")
STATIC = Path(__file__).parent / "static" / "operator"


async def _page(request: Request, template: str, **context: object) -> HTTPResponse:
    brand = await branding.for_host(request)
    return html(render(template, brand=brand, **context),
                headers={"Cache-Control": "no-store"})


@bp.get("/")
async def landing(request: Request) -> HTTPResponse:
    """The panel's landing page: the operator login and the Customer Login."""
    return await _page(request, "landing.html")


@bp.get("/operator/login")
async def login_page(request: Request) -> HTTPResponse:
    return await _page(request, "operator/login.html")


@bp.get("/operator/")
async def tickets_page(request: Request) -> HTTPResponse:
    return await _page(request, "operator/tickets.html")


@bp.get("/operator/tickets/<ticket_id:int>")
async def ticket_page(request: Request, ticket_id: int) -> HTTPResponse:
    return await _page(request, "operator/ticket.html", ticket_id=ticket_id)


@bp.get("/operator/subscribers")
async def search_page(request: Request) -> HTTPResponse:
    return await _page(request, "operator/search.html")


@bp.get("/operator/subscribers/<username:str>")
async def subscriber_page(request: Request, username: str) -> HTTPResponse:
    return await _page(request, "operator/subscriber.html", username=unquote(username)[:64])


@bp.get("/operator/problems")
async def problems_page(request: Request) -> HTTPResponse:
    return await _page(request, "operator/problems.html")


@bp.get("/operator/account")
async def account_page(request: Request) -> HTTPResponse:
    return await _page(request, "operator/account.html")


bp.static("/operator/static", STATIC, name="operator_static")
