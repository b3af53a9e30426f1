"""Notifications: channels, quiet hours, this browser's Web Push, the recent messages.

Reached from the account menu (not a tab): /customer/notifications and its API.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json

from portal.config import Config
from portal.core import notifications
from portal.store.models import Subscriber
from portal.web import apidoc, auth, branding
from portal.web.pages import render
from portal.web.request import json_body

bp = Blueprint("notifications")

LOG_SHOWN = 20


def _configured(config: Config) -> dict[str, bool]:
    """Which channels this ISP sends on ([notifier]); push needs nothing configured."""
    section = config.section("notifier")
    wanted = section.get("channels", ["email", "sms", "push"])
    if isinstance(wanted, str):
        wanted = [w.strip() for w in wanted.split(",")]
    return {"email": "email" in wanted and bool(section.get("smtp_host")),
            "sms": "sms" in wanted and bool(section.get("sms_url")),
            "push": "push" in wanted}


async def _view(request: Request, sub: Subscriber) -> dict[str, Any]:
    prefs = await notifications.get_prefs(sub.username)
    keys = await notifications.vapid_keys()
    return {"preferences": prefs.as_json(), "email": sub.email, "phone": sub.phone,
            "channels": _configured(request.app.ctx.config), "push_key": keys.public_b64,
            "browsers": len((await notifications.push_subscriptions([sub.username]))
                            [sub.username]),
            "log": await notifications.log(sub.username, LOG_SHOWN, for_subscriber=True)}


@bp.get("/customer/notifications")
async def page(request: Request) -> HTTPResponse:
    return html(render("notifications.html", brand=await branding.for_host(request)))


@bp.get("/customer/api/notifications")
@auth.customer
async def show(request: Request) -> HTTPResponse:
    return json(await _view(request, request.ctx.subscriber))


@bp.put("/customer/api/notifications/preferences")
@apidoc.body(apidoc.obj(email=apidoc.BOOLEAN, sms=apidoc.BOOLEAN, push=apidoc.BOOLEAN,
                          quiet_start=apidoc.STRING, quiet_end=apidoc.STRING))
@auth.customer
async def preferences(request: Request) -> HTTPResponse:
    sub = request.ctx.subscriber
    await notifications.set_prefs(sub.username, notifications.check_prefs(json_body(request)))
    return json(await _view(request, sub))


_SUBSCRIPTION = apidoc.obj(("endpoint", "keys"), endpoint=apidoc.STRING,
                           keys=apidoc.obj(("p256dh", "auth"), p256dh=apidoc.STRING,
                                           auth=apidoc.STRING))


@bp.post("/customer/api/notifications/push")
@apidoc.body(_SUBSCRIPTION)
@auth.customer
async def add_push(request: Request) -> HTTPResponse:
    sub = request.ctx.subscriber
    await notifications.add_push_subscription(
        sub.username, notifications.check_push_subscription(json_body(request)))
    return json(await _view(request, sub), status=201)


@bp.post("/customer/api/notifications/push/remove")
@apidoc.body(apidoc.obj(("endpoint",), endpoint=apidoc.STRING))
@auth.customer
async def remove_push(request: Request) -> HTTPResponse:
    sub = request.ctx.subscriber
    endpoint = json_body(request).get("endpoint")
    if isinstance(endpoint, str):
        await notifications.remove_push_subscription(sub.username, endpoint)
    return json(await _view(request, sub))
