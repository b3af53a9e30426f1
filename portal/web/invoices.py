"""Invoices tab: the subscriber's own invoices and credit notes, as a list and as PDF."""

from __future__ import annotations

import asyncio

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json, raw

from portal.core.billing import invoices, pdf
from portal.store.models import Reseller
from portal.web import auth, branding, tabs
from portal.web.pages import render

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
    return json({"invoices": await invoices.list_for(request.ctx.subscriber.id)})


@bp.get("/customer/api/invoices/<invoice_id:int>/pdf")
@auth.customer
@tabs.requires("invoices")
async def invoice_pdf(request: Request, invoice_id: int) -> HTTPResponse:
    invoice, lines = await invoices.get_for(request.ctx.subscriber.id, invoice_id)
    body = await asyncio.to_thread(pdf.render, invoice, lines)
    return raw(body, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{invoice.number}.pdf"'})
