"""Usage tab: the last 30 days and each day's sessions, for the signed-in subscriber."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html, json

from portal.errors import PortalError
from portal.usage import days, queries
from portal.web import auth, branding, tabs
from portal.web.pages import render

bp = Blueprint("usage_tab")
tabs.register(tabs.Tab("usage", "Usage", "▤", tabs.always))

HISTORY_DAYS = 30


@bp.get("/customer/usage")
async def usage_page(request: Request) -> HTTPResponse:
    return html(render("usage.html", brand=await branding.for_host(request)))


@bp.get("/customer/api/usage")
@auth.customer
@tabs.requires("usage")
async def usage_history(request: Request) -> HTTPResponse:
    """Daily download/upload for the last 30 local days, oldest first."""
    config = request.app.ctx.config
    tz = days.zone(config.timezone)
    today = days.today(datetime.now(UTC), tz)
    rows = await queries.history(request.ctx.subscriber.username, today, HISTORY_DAYS)
    return json({"today": today.isoformat(), "timezone": config.timezone, "days": rows})


@bp.get("/customer/api/usage/<day:str>/sessions")
@auth.customer
@tabs.requires("usage")
async def usage_sessions(request: Request, day: str) -> HTTPResponse:
    """The sessions that overlap one local day (YYYY-MM-DD) of the last 30."""
    config = request.app.ctx.config
    tz = days.zone(config.timezone)
    now = datetime.now(UTC)
    try:
        wanted = date.fromisoformat(day) if len(day) == 10 else None
    except ValueError:
        wanted = None
    today = days.today(now, tz)
    if wanted is None or not today - timedelta(days=HISTORY_DAYS - 1) <= wanted <= today:
        raise PortalError("invalid_day", "day must be a date (YYYY-MM-DD) of the last 30 days")
    sessions = await queries.sessions_on(request.ctx.subscriber.username, wanted, tz, now)
    return json({"day": wanted.isoformat(), "sessions": sessions})
