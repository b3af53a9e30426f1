"""WiFi tab: the subscriber's router, its SSIDs, changes and reboots through the ACS."""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json

from portal.core.wifi import service
from portal.store.models import Reseller
from portal.web import apidoc, auth, branding, language, tabs
from portal.web.pages import render
from portal.web.request import client_address, json_body

bp = Blueprint("wifi")


def _enabled(reseller: Reseller, config: Any) -> bool:
    return reseller.acs_id is not None  # type: ignore[attr-defined]


tabs.register(tabs.Tab("wifi", "WiFi", "≋", _enabled,
                       "WiFi management is not available for your account"))


@bp.get("/customer/wifi")
async def page(request: Request) -> HTTPResponse:
    return html(render("wifi.html", brand=await branding.for_host(request)))


@bp.get("/customer/api/wifi")
@auth.customer
@tabs.requires("wifi")
async def overview(request: Request) -> HTTPResponse:
    return json(await service.overview(request.ctx.subscriber,
                                       await language.request_language(request)))


@bp.post("/customer/api/wifi/changes")
@apidoc.body(apidoc.obj(("band",), band=apidoc.STRING, ssid=apidoc.STRING,
                          passphrase=apidoc.STRING))
@auth.customer
@tabs.requires("wifi")
async def change(request: Request) -> HTTPResponse:
    body = json_body(request)
    task = await service.change(request.ctx.subscriber, body.get("band"), body.get("ssid"),
                                body.get("passphrase"), client_address(request))
    return json(service.task_json(task, await language.request_language(request)),
                status=202 if task.status == "pending" else 200)


@bp.post("/customer/api/wifi/reboot")
@auth.customer
@tabs.requires("wifi")
async def reboot(request: Request) -> HTTPResponse:
    task = await service.reboot(request.ctx.subscriber, client_address(request))
    return json(service.task_json(task, await language.request_language(request)),
                status=202 if task.status == "pending" else 200)


@bp.get("/customer/api/wifi/tasks/<task_id:int>")
@auth.customer
@tabs.requires("wifi")
async def task(request: Request, task_id: int) -> HTTPResponse:
    return json(service.task_json(await service.refresh(request.ctx.subscriber, task_id),
                                  await language.request_language(request)))
