"""One error handler: PortalError -> JSON for the API, a page for the rest.

Never a stack trace to the client; unexpected exceptions are logged and answered
with a generic 500.
"""

from __future__ import annotations

import logging

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse, html, json

from portal.errors import PortalError

log = logging.getLogger("ispedge.portal")


def wants_json(request: Request) -> bool:
    return "/api/" in request.path or "application/json" in request.headers.get("accept", "")


async def _language(request: Request) -> str:
    from portal.web import language

    try:  # the stored language needs the database, which may be what failed
        return await language.request_language(request)
    except Exception:
        return language.page_language(request)


async def error_response(request: Request, status: int, code: str, message: str,
                         headers: dict[str, str] | None = None, **extra: object) -> HTTPResponse:
    from portal.web.language import error_message

    lang = await _language(request)
    message = error_message(lang, code, message, extra)  # the code never changes
    if wants_json(request):
        return json({"error": {"code": code, "message": message, **extra}}, status=status,
                    headers=headers)
    from portal.web import branding
    from portal.web.pages import render_error

    try:  # a page in the host's branding; the plain one if even that fails
        brand: branding.Brand | None = await branding.for_host(request)
    except Exception:
        brand = None
    return html(render_error(request, status, message, brand, language=lang), status=status,
                headers=headers)


def install(app: Sanic) -> None:
    @app.exception(PortalError)
    async def portal_error(request: Request, exc: PortalError) -> HTTPResponse:
        headers = {}
        if "retry_after" in exc.extra:
            headers["Retry-After"] = str(exc.extra["retry_after"])
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return await error_response(request, exc.status, exc.code, exc.message, headers,
                                    **exc.extra)

    @app.exception(SanicException)
    async def sanic_error(request: Request, exc: SanicException) -> HTTPResponse:
        status = getattr(exc, "status_code", 500) or 500
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                413: "body_too_large", 408: "timeout"}.get(status, "error")
        message = str(exc) if status < 500 else "internal error"
        return await error_response(request, status, code, message)

    @app.exception(Exception)
    async def unexpected(request: Request, exc: Exception) -> HTTPResponse:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return await error_response(request, 500, "internal_error",
                                    "something went wrong on our side")
