"""Buy Data tab: price per GB, the total, the purchase."""

from __future__ import annotations

from datetime import UTC, datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json

from portal.core import resellers, topups
from portal.core.billing import idempotency
from portal.core.billing.quantity import parse_cents, parse_gb
from portal.store.models import Reseller
from portal.web import apidoc, auth, branding, tabs
from portal.web.pages import render
from portal.web.request import client_address, json_body

bp = Blueprint("data")


def _enabled(reseller: Reseller, config: object) -> bool:
    return reseller.price_per_gb_cents > 0


tabs.register(tabs.Tab("data", "Buy Data", "+", _enabled,
                       "buying data is not enabled for your account"))


def max_gb(request: Request) -> int:
    return int(request.app.ctx.config.get("billing", "max_topup_gb", 100))


@bp.get("/customer/data")
async def data_page(request: Request) -> HTTPResponse:
    return html(render("data.html", brand=await branding.for_host(request)))


@bp.get("/customer/api/data")
@auth.customer
@tabs.requires("data")
async def offer(request: Request) -> HTTPResponse:
    sub = request.ctx.subscriber
    reseller = await sub.reseller
    return json({
        "price_per_gb_cents": reseller.price_per_gb_cents, "max_gb": max_gb(request),
        "currency": reseller.currency, "balance_cents": sub.balance_cents,
        "bonus_bytes": await topups.cycle_bonus_bytes(sub.id, sub.cycle_start),
        "expires_at": sub.expires_at.isoformat(),
        "payment": resellers.payment(reseller),  # shown with "more is needed"
    })


@bp.post("/customer/api/data/buy")
@apidoc.body(apidoc.obj(("gb",), gb=apidoc.INTEGER, amount_cents=apidoc.INTEGER))
@auth.customer
@tabs.requires("data")
async def buy(request: Request) -> HTTPResponse:
    body = json_body(request)
    sub = request.ctx.subscriber
    claim = idempotency.claim_from(request.headers.get("idempotency-key"), request.path, body)
    gb = parse_gb(body.get("gb"), max_gb(request))
    previewed = parse_cents(body["amount_cents"]) if "amount_cents" in body else None
    result, replayed = await topups.buy_data(sub.id, gb, previewed, datetime.now(UTC),
                                             ip=client_address(request), claim=claim)
    return json(result, headers={"Idempotent-Replayed": "true"} if replayed else None)
