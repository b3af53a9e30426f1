"""The operator console's pages (/operator/...) and the panel's landing page (/).

Pages are shells: no data is rendered into them except the brand (by Host, as the
portal's pages) and the id or username from the URL; static/operator/console.js
fills them from /operator/api with the operator's bearer token (localStorage, the
Authorization header; no cookies). The same CSP and headers as every portal page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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


def _shell(template: str) -> Callable[[Request], Awaitable[HTTPResponse]]:
    async def page(request: Request) -> HTTPResponse:
        return await _page(request, template)

    return page


# The pages that take nothing from the URL: path -> template. "/" is the panel's
# landing page, which links the operator login and the Customer Login.
SHELLS = {"/": "landing.html", "/operator/login": "operator/login.html",
          "/operator/": "operator/tickets.html", "/operator/subscribers": "operator/search.html",
          "/operator/problems": "operator/problems.html",
          "/operator/account": "operator/account.html"}
for _path, _template in SHELLS.items():
    bp.add_route(_shell(_template), _path, methods=["GET"],
                 name=_template.removeprefix("operator/").removesuffix(".html") + "_page")


@bp.get("/operator/tickets/<ticket_id:int>")
async def ticket_page(request: Request, ticket_id: int) -> HTTPResponse:
    return await _page(request, "operator/ticket.html", ticket_id=ticket_id)


@bp.get("/operator/subscribers/<username:str>")
async def subscriber_page(request: Request, username: str) -> HTTPResponse:
    return await _page(request, "operator/subscriber.html", username=unquote(username)[:64])


bp.static("/operator/static", STATIC, name="operator_static")
