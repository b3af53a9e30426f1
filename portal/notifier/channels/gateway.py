"""SMS or WhatsApp through the operator's HTTP gateway.

The URL and the body are templates over three values: `to` (the phone number),
`text` (the message) and `subject`. Each value is encoded for where it goes:
URL-encoded in the URL; in the body JSON-encoded (a quoted JSON string:
`{"to": {{ to }}, "text": {{ text }}}`) or URL-encoded for a form
(`to={{ to }}&text={{ text }}`), by `sms_content_type`. Rendered in a
sandbox with nothing else reachable. The gateway's answer: 2xx delivered,
408/429/5xx or no connection retried, other 4xx permanent; redirects are not
followed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from portal.notifier.channels import Abandoned, Ambiguous, Commit, SendError, tls_context
from portal.notifier.settings import Gateway

JSON = "application/json"
DEFAULT_BODY = {JSON: '{"to": {{ to }}, "text": {{ text }}}',
                "application/x-www-form-urlencoded": "to={{ to }}&text={{ text }}"}


def _env(encode: Callable[[Any], str]) -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                finalize=encode)


def _url_value(value: Any) -> str:
    return quote(str(value), safe="")


def _json_value(value: Any) -> str:
    return json.dumps(str(value), ensure_ascii=False)


_URL_ENV = _env(_url_value)
_JSON_ENV = _env(_json_value)


def build(cfg: Gateway, row: dict[str, Any]) -> tuple[str, bytes, dict[str, str]]:
    """(url, body, headers) for one message; SendError(permanent) if a template fails."""
    values = {"to": str(row["target"]), "text": str(row["body"]),
              "subject": str(row["subject"])}
    try:
        url = _URL_ENV.from_string(cfg.url).render(values)
        source = cfg.body or DEFAULT_BODY[cfg.content_type]
        env = _JSON_ENV if cfg.content_type == JSON else _URL_ENV
        body = env.from_string(source).render(values).encode("utf-8")
    except TemplateError as exc:
        raise SendError(f"gateway template: {exc}"[:300], retry=False,
                        before_commit=True) from None
    headers = {"Content-Type": f"{cfg.content_type}; charset=utf-8", **dict(cfg.headers)}
    if cfg.method == "GET":
        body = b""
        headers.pop("Content-Type")
    return url, body, headers


async def send(cfg: Gateway, row: dict[str, Any], timeout_s: float, commit: Commit) -> None:
    url, body, headers = build(cfg, row)
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False, trust_env=False,
                                 verify=tls_context()) as client:
        if not await commit():
            raise Abandoned("claim taken back")
        try:
            resp = await client.request(cfg.method, url, content=body or None, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise SendError(f"gateway unreachable: {exc!r}"[:300]) from None
        except httpx.HTTPError as exc:
            raise Ambiguous(f"gateway: no answer: {exc!r}"[:300]) from None
    if 200 <= resp.status_code < 300:
        return
    text = f"gateway answered {resp.status_code}: {resp.text[:200]}"
    raise SendError(text, retry=resp.status_code in (408, 429) or resp.status_code >= 500)
