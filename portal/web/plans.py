"""Change Plan tab: offered plans, the prorated quote, the confirmed change."""

from __future__ import annotations

from datetime import UTC, datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json

from portal.core import resellers
from portal.core.billing import idempotency, plan_change
from portal.core.billing.quantity import parse_id
from portal.store.models import Reseller
from portal.usage.days import zone
from portal.web import apidoc, auth, branding, language, tabs
from portal.web.pages import render
from portal.web.request import client_address, json_body

bp = Blueprint("plans")


def _enabled(reseller: Reseller, config: object) -> bool:
    return bool(reseller.allow_plan_change)


tabs.register(tabs.Tab("plans", "Change Plan", "⇅", _enabled,
                              "plan changes are not enabled for your account"))


def _rules(request: Request) -> plan_change.ChangeRules:
    config = request.app.ctx.config
    return plan_change.ChangeRules(
        key=request.app.ctx.keyring.current,
        per_day=int(config.get("billing", "plan_changes_per_day", 3)),
        tz=zone(config.timezone))


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
        "payment": resellers.payment(reseller),  # shown when a change costs more than held
    })


@bp.post("/customer/api/plans/quote")
@apidoc.operation(
    "Price a plan change",
    "The prorated amount of changing to `plan_id` now (> 0 charged, < 0 refunded) and "
    "`quote`, the server's signed quote to confirm it with (valid 15 minutes, for this "
    "subscriber and this change only).",
    body={"type": "object", "required": ["plan_id"],
          "properties": {"plan_id": {"type": "integer", "minimum": 1}}},
    responses={200: "the quote", 400: "invalid or same plan", 403: "plan changes disabled "
               "or subscription expired", 404: "plan not offered"})
@auth.customer
@tabs.requires("plans")
async def quote(request: Request) -> HTTPResponse:
    body = json_body(request)
    sub = request.ctx.subscriber
    q = await plan_change.quote_plan_change(sub, parse_id(body.get("plan_id")), datetime.now(UTC))
    offer = plan_change.offer(q, sub.id, sub.balance_cents, request.app.ctx.keyring.current,
                              await language.request_language(request))
    return json({**offer, "currency": (await sub.reseller).currency})


@bp.post("/customer/api/plans/change")
@apidoc.operation(
    "Change plan",
    "Switches to `plan_id`, charging or refunding the prorated amount computed by the "
    "server when the change commits. The signed `quote` from /plans/quote caps it: never "
    "a larger charge nor a larger refund than quoted. Otherwise, or without a valid quote "
    "(an expired, altered or another change's quote; a client time such as `quoted_at` "
    "is ignored), the answer is 409 with a fresh quote in `error.quote`. At most "
    "`billing.plan_changes_per_day` changes per subscriber and local day (429 "
    "`plan_change_limit`, Retry-After: seconds to midnight). Optional Idempotency-Key.",
    body={"type": "object", "required": ["plan_id", "quote"],
          "properties": {"plan_id": {"type": "integer", "minimum": 1},
                         "quote": {"type": "string", "maxLength": 512,
                                   "description": "`quote` from /customer/api/plans/quote"}}},
    responses={200: "changed: plan, amount_cents, quoted_cents, invoice, balance_cents",
               400: "invalid or same plan", 402: "insufficient balance",
               403: "plan changes disabled or subscription expired", 404: "plan not offered",
               409: "quote missing, invalid, expired or exceeded: error.quote is a fresh one",
               429: "daily plan-change limit reached (Retry-After)"})
@auth.customer
@tabs.requires("plans")
async def change(request: Request) -> HTTPResponse:
    body = json_body(request)
    sub = request.ctx.subscriber
    claim = idempotency.claim_from(request.headers.get("idempotency-key"), request.path, body)
    # Only the signed quote counts: a client's amount or time (an older client's
    # `quoted_at`) is ignored, and without a quote the answer is 409 with a fresh one.
    result, replayed = await plan_change.change_plan(
        sub.id, parse_id(body.get("plan_id")), body.get("quote"), datetime.now(UTC),
        _rules(request), ip=client_address(request), claim=claim,
        language=await language.request_language(request))
    return json(result, headers={"Idempotent-Replayed": "true"} if replayed else None)
