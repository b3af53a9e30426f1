"""Invoices tab: the subscriber's wallet (every money movement, its document), invoices,
credit notes and receipts as a list and as PDF, and "Renew now" where the reseller allows it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json, raw

from portal.core import money, renewal, resellers, wallet
from portal.core.billing import idempotency, invoices, pdf
from portal.core.billing.quantity import parse_cents
from portal.store.models import Reseller
from portal.web import apidoc, auth, branding, language, tabs
from portal.web.pages import render
from portal.web.request import client_address, json_body

bp = Blueprint("invoices")


def _always(reseller: Reseller, config: object) -> bool:
    return True


tabs.register(tabs.Tab("invoices", "Invoices", "▤", _always))


@bp.get("/customer/invoices")
async def invoices_page(request: Request) -> HTTPResponse:
    return html(render("invoices.html", brand=await branding.for_host(request)))


@bp.get("/customer/api/invoices")
@auth.customer
@tabs.requires("invoices")
async def list_invoices(request: Request) -> HTTPResponse:
    # each line also said in the subscriber's language (`description_text`)
    return json({"invoices": await invoices.list_for(
        request.ctx.subscriber.id, language=await language.request_language(request))})


@bp.get("/customer/api/invoices/<invoice_id:int>/pdf")
@auth.customer
@tabs.requires("invoices")
async def invoice_pdf(request: Request, invoice_id: int) -> HTTPResponse:
    invoice, lines = await invoices.get_for(request.ctx.subscriber.id, invoice_id)
    # In the subscriber's stored language (or this device's override of it)
    body = await asyncio.to_thread(pdf.render, invoice, lines,
                                   await language.request_language(request))
    return raw(body, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{invoice.number}.pdf"'})


def _int_arg(request: Request, name: str, default: int | None) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    return money.parse_whole(value, name)  # Arabic-Indic digits too; '²' a 400, not a 500


@bp.get("/customer/api/wallet")
@auth.customer
@tabs.requires("invoices")
async def wallet_view(request: Request) -> HTTPResponse:
    """The balance, one page of money movements (?before=<id>&limit=<n>), what is prepaid,
    the renewal offer and how to pay the reseller."""
    sub = request.ctx.subscriber
    reseller = await sub.reseller
    plan = await sub.plan
    page = await wallet.history(sub.id, _int_arg(request, "before", None),
                                _int_arg(request, "limit", 50) or 50)
    return json({
        **page, "balance_cents": sub.balance_cents, "currency": reseller.currency,
        "expires_at": sub.expires_at.isoformat(), "cycle_start": sub.cycle_start.isoformat(),
        "next_cycle": await renewal.next_cycle(sub.id),
        "renewal": {"self_service": reseller.allow_self_renewal, "plan": plan.name,
                    "price_cents": plan.price_cents, "period_days": plan.period_days},
        "payment": resellers.payment(reseller),
    })


@bp.post("/customer/api/renew")
@apidoc.body(apidoc.obj((), amount_cents=apidoc.INTEGER))
@auth.customer
@tabs.requires("invoices")
async def renew(request: Request) -> HTTPResponse:
    """Renew now from the wallet (reseller's allow_self_renewal); Idempotency-Key honoured."""
    body = json_body(request)
    sub = request.ctx.subscriber
    claim = idempotency.claim_from(request.headers.get("idempotency-key"), request.path, body)
    previewed = parse_cents(body["amount_cents"]) if "amount_cents" in body else None
    result, replayed = await renewal.renew(
        sub.id, datetime.now(UTC), paid_by="wallet", actor=f"customer:{sub.username}",
        self_service=True, previewed_cents=previewed, claim=claim, ip=client_address(request))
    return json(result, headers={"Idempotent-Replayed": "true"} if replayed else None)
