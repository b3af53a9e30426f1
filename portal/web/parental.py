"""Parental tab: master switch, category toggles, what was blocked."""

from __future__ import annotations

from datetime import UTC, datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json

from portal.core import parental
from portal.store.models import Reseller
from portal.web import apidoc, auth, branding, tabs
from portal.web.pages import render
from portal.web.request import client_address, json_body

bp = Blueprint("parental")


def _enabled(reseller: Reseller, config: object) -> bool:
    return bool(reseller.parental_enabled)


tabs.register(tabs.Tab("parental", "Parental", "◐", _enabled,
                       "parental controls are not enabled for your account"))


def categories(request: Request) -> list[str]:
    return parental.categories_from_config(request.app.ctx.config)


@bp.get("/customer/parental")
async def parental_page(request: Request) -> HTTPResponse:
    return html(render("parental.html", brand=await branding.for_host(request)))


@bp.get("/customer/api/parental")
@auth.customer
@tabs.requires("parental")
async def show(request: Request) -> HTTPResponse:
    return json(await parental.view(request.ctx.subscriber, categories(request),
                                    datetime.now(UTC)))


@bp.put("/customer/api/parental")
@apidoc.body(apidoc.obj(enabled=apidoc.BOOLEAN,
                          categories={"type": "object",
                                      "additionalProperties": apidoc.BOOLEAN}))
@auth.customer
@tabs.requires("parental")
async def update(request: Request) -> HTTPResponse:
    sub = request.ctx.subscriber
    available = categories(request)
    await parental.change(sub, json_body(request), available, ip=client_address(request))
    return json(await parental.view(sub, available, datetime.now(UTC)))
