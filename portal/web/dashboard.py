"""Dashboard tab API: live rate and the dashboard summary of the signed-in subscriber."""

from __future__ import annotations

from datetime import UTC, datetime

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from portal.core import dashboard
from portal.usage import live
from portal.web import auth, tabs

bp = Blueprint("dashboard_tab")


def live_source(request: Request) -> live.LiveTraffic:
    app = request.app
    source = getattr(app.ctx, "live_source", None)
    if source is None:
        source = app.ctx.live_source = live.from_config(app.ctx.config)
    return source


@bp.get("/customer/api/live")
@auth.customer
@tabs.requires("dashboard")
async def live_rate(request: Request) -> HTTPResponse:
    """Live download/upload bits per second and whether the line is online."""
    source = live_source(request)
    sample = await source.sample(request.ctx.subscriber.username, datetime.now(UTC))
    return json(sample.as_json(source.name))


@bp.get("/customer/api/dashboard")
@auth.customer
@tabs.requires("dashboard")
async def summary(request: Request) -> HTTPResponse:
    """Today's and this cycle's usage, plan, FUP tier, balance and expiry."""
    return json(await dashboard.dashboard(request.ctx.subscriber, datetime.now(UTC),
                                          request.app.ctx.config))
