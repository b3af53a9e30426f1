"""Support tab: the subscriber's own tickets."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json

from portal.core import tickets
from portal.web import apidoc, auth, branding, tabs
from portal.web.pages import render
from portal.web.request import client_address, json_body

bp = Blueprint("support")

tabs.register(tabs.Tab("support", "Support", "✉", lambda reseller, config: True))


@bp.get("/customer/support")
async def page(request: Request) -> HTTPResponse:
    return html(render("support.html", brand=await branding.for_host(request),
                       categories=tickets.CATEGORIES))


@bp.get("/customer/api/tickets")
@auth.customer
@tabs.requires("support")
async def list_tickets(request: Request) -> HTTPResponse:
    return json({"tickets": await tickets.customer_list(request.ctx.subscriber),
                 "categories": tickets.CATEGORIES})


@bp.post("/customer/api/tickets")
@apidoc.body(apidoc.obj(("category", "subject", "message"), category=apidoc.STRING,
                          subject=apidoc.STRING, message=apidoc.STRING))
@auth.customer
@tabs.requires("support")
async def open_ticket(request: Request) -> HTTPResponse:
    body = json_body(request)
    ticket = await tickets.open_ticket(request.ctx.subscriber, body.get("category"),
                                       body.get("subject"), body.get("message"),
                                       client_address(request), config=request.app.ctx.config)
    return json(await tickets.thread_json(ticket, for_operator=False), status=201)


@bp.get("/customer/api/tickets/<ticket_id:int>")
@auth.customer
@tabs.requires("support")
async def show(request: Request, ticket_id: int) -> HTTPResponse:
    ticket = await tickets.own_ticket(request.ctx.subscriber, ticket_id)
    return json(await tickets.thread_json(ticket, for_operator=False))


@bp.post("/customer/api/tickets/<ticket_id:int>/reply")
@apidoc.body(apidoc.obj(("message",), message=apidoc.STRING))
@auth.customer
@tabs.requires("support")
async def reply(request: Request, ticket_id: int) -> HTTPResponse:
    body = json_body(request)
    ticket = await tickets.customer_reply(request.ctx.subscriber, ticket_id, body.get("message"),
                                          client_address(request))
    return json(await tickets.thread_json(ticket, for_operator=False))
