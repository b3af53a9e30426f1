"""The signed-in subscriber's own data. Everything keys on request.ctx.subscriber."""

from __future__ import annotations

from datetime import UTC, datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from portal import i18n
from portal.core import language as language_case
from portal.store.models import Subscriber
from portal.web import apidoc, auth, branding, tabs
from portal.web.request import json_body

bp = Blueprint("customer_api")


async def summary(sub: Subscriber, now: datetime, config: object = None) -> dict[str, object]:
    plan = await sub.plan
    reseller = await sub.reseller
    remaining = (sub.expires_at - now).total_seconds()
    return {
        "username": sub.username,
        "full_name": sub.full_name,
        "status": sub.status,
        "plan": {"id": plan.id, "name": plan.name, "down_kbps": plan.down_kbps,
                 "up_kbps": plan.up_kbps, "price_cents": plan.price_cents,
                 "quota_bytes": plan.quota_bytes, "period_days": plan.period_days},
        "balance_cents": sub.balance_cents,
        "currency": reseller.currency,
        "cycle_start": sub.cycle_start.isoformat(),
        "expires_at": sub.expires_at.isoformat(),
        "expires_in_seconds": max(0, int(remaining)),
        "expired": remaining <= 0,
        "branding": branding.of(reseller).as_json(),
        "tabs": tabs.visible(reseller, config),
        # Added for issue 20: the language the portal, PDFs and messages speak (the
        # subscriber's choice, else the reseller's default, else English) and the offer.
        "language": language_case.resolve(sub.language, reseller.default_language),
        "languages": list(i18n.LANGUAGES),
    }


@bp.get("/customer/api/me")
@auth.customer
async def me(request: Request) -> HTTPResponse:
    return json(await summary(request.ctx.subscriber, datetime.now(UTC), request.app.ctx.config))


@bp.put("/customer/api/me/language")
@apidoc.body(apidoc.obj(("language",), language={"type": "string", "enum": list(i18n.LANGUAGES)}))
@auth.customer
async def set_language(request: Request) -> HTTPResponse:
    """The subscriber chooses the portal's language (also PDFs, messages, notifications)."""
    body = json_body(request)
    sub = request.ctx.subscriber
    code = await language_case.set_language(sub.username, body.get("language"),
                                            actor=f"customer:{sub.username}")
    return json({"language": code})


@bp.get("/customer/i18n/<name:str>")
async def js_catalog(request: Request, name: str) -> HTTPResponse:
    """The translations app.js uses ({msgid: text}), for clients that build their own pages."""
    language = name.removesuffix(".json")
    if language not in i18n.LANGUAGES or not name.endswith(".json"):
        from portal.errors import NotFound

        raise NotFound("unknown_language", "no such language")
    return json(i18n.js_catalog(language), headers={"Cache-Control": "public, max-age=300"})
