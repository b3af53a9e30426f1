"""Change Plan tab: offered plans, the prorated quote, the confirmed change."""

from __future__ import annotations

from datetime import UTC, datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json

from portal.core.billing import idempotency, plan_change
from portal.core.billing.quantity import parse_cents, parse_id
from portal.store.models import Reseller
from portal.web import apidoc, auth, branding, tabs
from portal.web.pages import render
from portal.web.request import client_address, json_body

bp = Blueprint("plans")


def _enabled(reseller: Reseller, config: object) -> bool:
    return bool(reseller.allow_plan_change)


tabs.register(tabs.Tab("plans", "Change Plan", "⇅", _enabled,
                              "plan changes are not enabled for your account"))


@bp.get("/customer/plans")
async def plans_page(request: Request) -> HTTPResponse:
    return html(render("plans.html", brand=await branding.for_host(request)))


@bp.get("/customer/api/plans")
@auth.customer
@tabs.requires("plans")
async def list_plans(request: Request) -> HTTPResponse:
    sub = request.ctx.subscriber
    reseller = await sub.reseller
    plans = await plan_change.offered_plans(sub)
    return json({
        "current_plan_id": sub.plan_id, "currency": reseller.currency,
        "balance_cents": sub.balance_cents, "refund_allowed": reseller.allow_downgrade_refund,
        "cycle_start": sub.cycle_start.isoformat(), "expires_at": sub.expires_at.isoformat(),
        "plans": [{**plan_change.plan_json(p), "current": p.id == sub.plan_id} for p in plans],
    })


@bp.post("/customer/api/plans/quote")
@apidoc.body(apidoc.obj(("plan_id",), plan_id=apidoc.INTEGER))
@auth.customer
@tabs.requires("plans")
async def quote(request: Request) -> HTTPResponse:
    body = json_body(request)
    sub = request.ctx.subscriber
    q = await plan_change.quote_plan_change(sub, parse_id(body.get("plan_id")), datetime.now(UTC))
    return json({**q.as_json(sub.balance_cents), "currency": (await sub.reseller).currency})


@bp.post("/customer/api/plans/change")
@apidoc.body(apidoc.obj(("plan_id", "amount_cents"), plan_id=apidoc.INTEGER,
                          amount_cents=apidoc.INTEGER, quoted_at=apidoc.STRING))
@auth.customer
@tabs.requires("plans")
async def change(request: Request) -> HTTPResponse:
    body = json_body(request)
    sub = request.ctx.subscriber
    claim = idempotency.claim_from(request.headers.get("idempotency-key"), request.path, body)
    result, replayed = await plan_change.change_plan(
        sub.id, parse_id(body.get("plan_id")), parse_cents(body.get("amount_cents")),
        body.get("quoted_at"), datetime.now(UTC), ip=client_address(request), claim=claim)
    return json(result, headers={"Idempotent-Replayed": "true"} if replayed else None)
