"""Reading requests safely."""

from __future__ import annotations

import json as jsonlib
from typing import Any

from sanic import Request

from portal.errors import PortalError
from portal.web.client_ip import client_ip


def client_address(request: Request) -> str:
    peer = request.conn_info.client_ip if request.conn_info else request.ip
    trusted = request.app.ctx.trusted_proxies
    if not trusted:  # no proxy is believed: the peer, whatever the header says
        return peer or ""
    return client_ip(peer or "", request.headers.get("x-forwarded-for"), trusted)


# Our bodies are small flat objects; deeper nesting (or a body made of thousands of
# arrays) is refused before the parser sees it: json.loads recurses once per level,
# and 2,000 levels raise RecursionError.
MAX_JSON_DEPTH = 32
MAX_JSON_CONTAINERS = 512
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if brackets nest deeper than limit, do not pair up, or open more than
    MAX_JSON_CONTAINERS arrays and objects; no recursion, well under a millisecond.

    Strings are blanked first (a bracket inside one is text); each pass then strips
    the innermost empty pairs with C-speed replaces: limit passes at most.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # Escapes pair up left to right, so dropping every \\ and then every \" leaves
    # only the quotes that open and close strings: what lies between them is text.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    if len(brackets) > 2 * MAX_JSON_CONTAINERS:
        return True
    for _ in range(limit):
        if not brackets:
            return False
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(brackets):
            return True  # brackets that do not pair up: not JSON
        brackets = shorter
    return bool(brackets)


def require_json(request: Request) -> None:
    """415 unless the body is declared JSON: a cross-site HTML form can only send
    text/plain, form-urlencoded or multipart, so this also stops forged posts."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise PortalError("unsupported_media_type",
                          "send the body as JSON with Content-Type: application/json", 415)


def json_body(request: Request) -> dict[str, Any]:
    require_json(request)
    if not request.body:
        raise PortalError("missing_body", "a JSON object body is required", 400)
    if too_deep(request.body):
        raise PortalError("malformed_json", f"the body is not valid JSON, nests deeper than "
                          f"{MAX_JSON_DEPTH} or holds more than {MAX_JSON_CONTAINERS} arrays "
                          "and objects", 400)
    try:
        data = jsonlib.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise PortalError("malformed_json", "the body is not valid JSON", 400) from None
    if not isinstance(data, dict):
        raise PortalError("malformed_json", "the body must be a JSON object", 400)
    problem = _bad_text(data)
    if problem:
        raise PortalError("invalid_text", problem, 400)
    return data


def _bad_text(value: Any) -> str | None:
    """Why a string in the body cannot be stored, or None.

    NUL: PostgreSQL cannot store it in text; a lone surrogate ("\\ud800") is not
    text at all and fails when encoded for either database. Refused the same way on
    every database.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return "text must not contain NUL characters"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "text must be valid Unicode (no lone surrogates)"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            problem = _bad_text(k) or _bad_text(v)
            if problem:
                return problem
    elif isinstance(value, list):
        for v in value:
            problem = _bad_text(v)
            if problem:
                return problem
    return None


def credentials(request: Request) -> tuple[str, str]:
    """username and password from a login body, or a 422 naming what is missing."""
    body = json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username \
            or not password:
        raise PortalError("missing_fields", "username and password are required", 422)
    return username, password
