"""The portal application: one factory, blueprints by tab, one error handler."""

from __future__ import annotations

from pathlib import Path

from sanic import Request, Sanic
from sanic.response import HTTPResponse, raw

from portal.config import Config
from portal.core.auth.keys import KeyRing
from portal.core.auth.lockout import Policy
from portal.speed import settings as speed_settings
from portal.store import db
from portal.store.models import Reseller
from portal.web import apidoc, customer_api, errors, login, operator_api, support, wifi
from portal.web import dashboard as dashboard_tab
from portal.web import data as data_tab
from portal.web import invoices as invoices_tab
from portal.web import parental as parental_tab
from portal.web import plans as plans_tab
from portal.web import pwa as pwa_routes
from portal.web import usage as usage_tab
from portal.web.client_ip import parse_networks

STATIC = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def create_app(config: Config, name: str = "ispedge") -> Sanic:
    app = Sanic(name)
    app.config.REQUEST_MAX_SIZE = int(config.get("portal", "max_body_bytes"))
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.ACCESS_LOG = False
    # sanic-ext's automatic HEAD/OPTIONS routes re-finalise the router once per
    # route at start (seconds with ~90 routes, the first request waits); we need neither.
    app.config.HTTP_AUTO_HEAD = False
    app.config.HTTP_AUTO_OPTIONS = False
    app.config.CORS_AUTOMATIC_OPTIONS = False
    app.ctx.config = config
    speed_settings.configure(config)
    # The shared key ring (kid -> key; re-read when `ispedge portal rotate-key` changes
    # the file) signs and verifies tokens; jwt_key stays the bytes of the current key
    # as of start, for whatever else signs with the portal's key (plan-change quotes).
    app.ctx.keyring = KeyRing.from_config(config)
    app.ctx.jwt_key = app.ctx.keyring.current
    app.ctx.lockout_policy = Policy.from_config(config)
    app.ctx.trusted_proxies = parse_networks(config.get("portal", "trusted_proxies") or [])
    app.ctx.hostnames = {"localhost", *[h.lower() for h in config.get("portal", "hostnames", [])]}
    errors.install(app)
    apidoc.describe_api()

    @app.before_server_start
    async def _open(app: Sanic) -> None:
        await db.open_db(config.database_url)

    @app.after_server_stop
    async def _close(app: Sanic) -> None:
        await db.close_db()

    @app.on_response
    async def _headers(request: Request, response: HTTPResponse) -> None:
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if request.path.startswith("/customer/api/"):
            response.headers.setdefault("Cache-Control", "no-store")

    @app.get("/customer/branding/logo/<reseller_id:int>")
    async def logo(request: Request, reseller_id: int) -> HTTPResponse:
        reseller = await Reseller.get_or_none(id=reseller_id)
        if reseller is None or not reseller.logo_bytes:
            from portal.errors import NotFound

            raise NotFound("no_logo", "no logo")
        # A sandbox CSP makes an SVG opened directly inert: no script in our origin.
        return raw(reseller.logo_bytes, content_type=reseller.logo_content_type,
                   headers={"Content-Security-Policy": "default-src 'none'; style-src "
                            "'unsafe-inline'; sandbox", "Cache-Control": "public, max-age=300"})

    app.static("/customer/static", STATIC, name="static")
    app.blueprint(login.bp)
    app.blueprint(customer_api.bp)
    app.blueprint(dashboard_tab.bp)
    app.blueprint(usage_tab.bp)
    app.blueprint(pwa_routes.bp)
    app.blueprint(plans_tab.bp)
    app.blueprint(data_tab.bp)
    app.blueprint(invoices_tab.bp)
    app.blueprint(parental_tab.bp)
    app.blueprint(wifi.bp)
    app.blueprint(support.bp)
    app.blueprint(operator_api.bp)
    return app
