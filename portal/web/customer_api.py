"""The signed-in subscriber's own data. Everything keys on request.ctx.subscriber."""

from __future__ import annotations

from datetime import UTC, datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from portal.store.models import Subscriber
from portal.web import auth, branding, tabs

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
    }


@bp.get("/customer/api/me")
@auth.customer
async def me(request: Request) -> HTTPResponse:
    return json(await summary(request.ctx.subscriber, datetime.now(UTC), request.app.ctx.config))
