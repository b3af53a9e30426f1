"""The portal application: one factory, blueprints by tab, one error handler."""

from __future__ import annotations

from pathlib import Path

from sanic import Request, Sanic
from sanic.response import HTTPResponse, raw

from portal.config import Config, ConfigError
from portal.core.auth.keys import KeyRing
from portal.core.auth.lockout import Policy
from portal.speed import settings as speed_settings
from portal.store import db
from portal.store.models import Reseller
from portal.web import (
    apidoc,
    console,
    customer_api,
    errors,
    expired,
    login,
    operator_api,
    support,
    wifi,
)
from portal.web import dashboard as dashboard_tab
from portal.web import data as data_tab
from portal.web import invoices as invoices_tab
from portal.web import metrics as request_metrics
from portal.web import notifications as notifications_page
from portal.web import parental as parental_tab
from portal.web import plans as plans_tab
from portal.web import pwa as pwa_routes
from portal.web import usage as usage_tab
from portal.web.client_ip import parse_networks
from portal.web.limiter import API_PREFIXES, ApiLimiter
from portal.web.request import client_address, require_json
from portal.web.routing import register_bounded_int

STATIC = Path(__file__).parent / "static"
REDOC_PAGE = Path(__file__).parent / "templates" / "redoc.html"
REDOC_JS = "/customer/static/vendor/redoc/redoc.standalone.js"
OPENAPI_JSON = "/docs/openapi.json"

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
# /docs holds no subscriber data; Redoc injects its styles (styled-components) and
# starts its search worker from a blob, which the portal's own CSP forbids.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HSTS = "max-age=31536000"
PORTAL_APPLICATION_NAME = "ispedge-portal"


def _configure_docs(app: Sanic, enabled: bool) -> None:
    """sanic-ext serves /docs (Redoc) and /docs/openapi.json; Redoc's script comes from
    the portal (static/vendor/redoc), never a CDN. Swagger UI (CDN only) is off."""
    app.config.OAS = enabled
    app.config.OAS_UI_SWAGGER = False
    app.config.OAS_UI_REDOC = True
    app.config.OAS_PATH_TO_REDOC_HTML = str(REDOC_PAGE)
    app.config.OAS_UI_REDOC_CDN_URL = REDOC_JS
    app.config.OAS_UI_REDOC_HTML_TITLE = "ispedge API"


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
    # The portal, its PWA and /docs are same-origin and the mobile app is no browser:
    # no response needs CORS headers. sanic-ext's CORS still ran a response
    # middleware on every request (~4 % of the portal's own Python calls on
    # /customer/api/live, cProfile 2026-12-02) to add none.
    app.config.CORS = False
    app.ctx.config = config
    register_bounded_int(app)
    _configure_docs(app, bool(config.get("portal", "docs", True)))
    app.ctx.limiter = ApiLimiter.from_config(config)
    hsts = str(config.get("portal", "public_url") or "").lower().startswith("https://")
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
    metrics_address, metrics_port = request_metrics.settings(config)
    if metrics_port:
        # Requests by route template, method and status on a port of its own (issue 17).
        app.ctx.metrics = request_metrics.RequestMetrics()
        app.ctx.metrics.install(app)

        @app.before_server_start
        async def _metrics(app: Sanic) -> None:
            app.ctx.metrics.serve(metrics_address, metrics_port)

    pool_max = int(config.get("portal", "db_pool_max") or db.PG_POOL_MAX)
    if not 1 <= pool_max <= 1000:
        raise ConfigError(f"[portal] db_pool_max: expected 1-1000, got {pool_max}")

    @app.before_server_start
    async def _open(app: Sanic) -> None:
        # application_name: pg_stat_activity tells the portals' connections apart.
        await db.open_db(config.database_url, PORTAL_APPLICATION_NAME, pool_max)

    @app.after_server_stop
    async def _close(app: Sanic) -> None:
        await db.close_db()

    # sanic-ext builds the OpenAPI document anew on every request (tens of ms of CPU,
    # unauthenticated); the routes never change while the process runs, so once is enough.
    app.ctx.openapi_json = None

    @app.on_request
    async def _guard(request: Request) -> HTTPResponse | None:
        """Every API request: the limiter by address, and a body only as JSON (415)."""
        path = request.path
        if path.startswith(API_PREFIXES):
            request.app.ctx.limiter.hit_address(path, client_address(request))
            if request.body:
                require_json(request)
        elif path == OPENAPI_JSON and request.app.ctx.openapi_json is not None:
            return raw(request.app.ctx.openapi_json, content_type="application/json")
        else:
            # An expired subscriber's lookup the resolver sent here (portal/web/expired.py).
            return await expired.intercept(request)
        return None

    @app.on_response
    async def _headers(request: Request, response: HTTPResponse) -> None:
        if request.path.startswith("/docs"):
            response.headers.setdefault("Content-Security-Policy", DOCS_CSP)
            if request.path == OPENAPI_JSON and response.status == 200 \
                    and request.app.ctx.openapi_json is None:
                request.app.ctx.openapi_json = response.body
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if hsts:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
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
    app.blueprint(notifications_page.bp)
    app.blueprint(operator_api.bp)
    app.blueprint(console.bp)
    return app
