"""Reading requests safely."""

from __future__ import annotations

import json as jsonlib
from typing import Any

from sanic import Request

from portal.errors import PortalError
from portal.web.client_ip import client_ip


def client_address(request: Request) -> str:
    peer = request.conn_info.client_ip if request.conn_info else request.ip
    return client_ip(peer or "", request.headers.get("x-forwarded-for"),
                     request.app.ctx.trusted_proxies)


def json_body(request: Request) -> dict[str, Any]:
    if not request.body:
        raise PortalError("missing_body", "a JSON object body is required", 400)
    try:
        data = jsonlib.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise PortalError("malformed_json", "the body is not valid JSON", 400) from None
    if not isinstance(data, dict):
        raise PortalError("malformed_json", "the body must be a JSON object", 400)
    if _has_nul(data):
        # PostgreSQL cannot store NUL in text; refuse it the same way on every database.
        raise PortalError("invalid_text", "text must not contain NUL characters", 400)
    return data


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def credentials(request: Request) -> tuple[str, str]:
    """username and password from a login body, or a 422 naming what is missing."""
    body = json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username \
            or not password:
        raise PortalError("missing_fields", "username and password are required", 422)
    return username, password
