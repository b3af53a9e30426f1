"""The wording of notifications: templates per reseller, language, event and channel.

Templates are Jinja2 rendered in a SandboxedEnvironment with a fixed set of
variables (VARIABLES): no attribute of a Python object is reachable and an
unknown variable is an error, so a reseller's template can say nothing but what
it is given. A reseller's own template (notification_templates) wins over the
operator's default (reseller_id NULL), which wins over the built-in English text
below; a language with no template falls back to 'en'.
An e-mail subject is one line: CR, LF and other control characters from any
value are replaced by spaces, so user data never makes a mail header.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from portal.errors import PortalError
from portal.store import db

EVENTS = ("expiry_soon", "expired", "fup_tier", "extra_used_up", "ticket_answered", "receipt")
FALLBACK_LANGUAGE = "en"
SUBJECT_MAX = 200
BODY_MAX = 4000
SMS_MAX = 640

# Every template sees these (and only these); event-specific ones are listed per event.
COMMON = ("name", "username", "company", "portal_url")
VARIABLES: dict[str, tuple[str, ...]] = {
    "expiry_soon": ("days", "expires_on", "plan"),
    "expired": ("expires_on", "plan"),
    "fup_tier": ("period", "tier", "down_mbps", "up_mbps"),
    "extra_used_up": ("period", "tier", "down_mbps", "up_mbps"),
    "ticket_answered": ("ticket_id", "ticket_subject"),
    "receipt": ("number", "document", "amount", "currency"),
}

_SUBJECTS = {
    "expiry_soon": "Your {{ plan }} plan expires in {{ days }} day{{ 's' if days != 1 }}",
    "expired": "Your {{ plan }} plan has expired",
    "fup_tier": "You reached your fair-use limit: {{ down_mbps }} Mbps now",
    "extra_used_up": "Your extra data is used up: {{ down_mbps }} Mbps now",
    "ticket_answered": "Your ticket #{{ ticket_id }} was answered",
    "receipt": "{{ document|capitalize }} {{ number }}: {{ amount }} {{ currency }}",
}
_BODIES = {
    "expiry_soon": "Hello {{ name }}, your {{ plan }} plan with {{ company }} expires on "
                   "{{ expires_on }} (in {{ days }} day{{ 's' if days != 1 }}). Renew it in "
                   "the portal: {{ portal_url }}",
    "expired": "Hello {{ name }}, your {{ plan }} plan with {{ company }} expired on "
               "{{ expires_on }}. Renew it in the portal: {{ portal_url }}",
    "fup_tier": "Hello {{ name }}, you used your {{ period }} allowance (tier {{ tier }}): "
                "your speed is {{ down_mbps }}/{{ up_mbps }} Mbps until it resets. Buy extra "
                "data in the portal: {{ portal_url }}",
    "extra_used_up": "Hello {{ name }}, the extra data you bought is used up: your speed is "
                     "{{ down_mbps }}/{{ up_mbps }} Mbps until it resets. {{ portal_url }}",
    "ticket_answered": "Hello {{ name }}, {{ company }} answered your ticket "
                       "#{{ ticket_id }} ({{ ticket_subject }}). Read it in the portal: "
                       "{{ portal_url }}",
    "receipt": "Hello {{ name }}, {{ company }} issued {{ document }} {{ number }} for "
               "{{ amount }} {{ currency }}. {{ portal_url }}",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


class _Env(SandboxedEnvironment):
    pass


_env = _Env(undefined=StrictUndefined, autoescape=False, trim_blocks=True)


def one_line(text: str) -> str:
    """No CR, LF or other control character: what goes into a mail header."""
    return " ".join("".join(" " if (ord(c) < 32 or ord(c) == 127 or c in "\u2028\u2029\x85")
                            else c for c in text).split())


def check_template(event: str, subject: str, body: str) -> None:
    """A template an operator or reseller stores: it must render with sample values."""
    if event not in EVENTS:
        raise PortalError("invalid_template", f"unknown event {event[:40]!r}")
    if len(subject) > SUBJECT_MAX or len(body) > BODY_MAX:
        raise PortalError("invalid_template", "template too long")
    sample: dict[str, Any] = {k: "x" for k in (*COMMON, *VARIABLES[event])}
    sample.update(days=3, tier=1)
    try:
        _render_one(subject, sample)
        _render_one(body, sample)
    except Exception as exc:  # any failure of a stored template: refused with its reason
        raise PortalError("invalid_template", f"template does not render: {exc}"[:200]) \
            from None


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    return _env.from_string(source)


def _render_one(source: str, values: dict[str, Any]) -> str:
    return _compiled(source).render(values)


def render(event: str, channel: str, values: dict[str, Any],
           custom: tuple[str, str] | None = None) -> Rendered:
    """The message for an event on a channel: `custom` (subject, body) or the built-in.

    `values` must hold exactly the event's variables; anything else is refused, so a
    template never receives an object whose attributes it could walk.
    """
    allowed = set(COMMON) | set(VARIABLES[event])
    if set(values) != allowed:
        raise ValueError(f"{event}: variables {sorted(set(values) ^ allowed)} differ")
    if any(not isinstance(v, (str, int)) for v in values.values()):
        raise ValueError(f"{event}: only text and whole numbers are passed to templates")
    subject_src, body_src = custom or (_SUBJECTS[event], _BODIES[event])
    subject = one_line(_render_one(subject_src, values))[:SUBJECT_MAX]
    body = _render_one(body_src, values)
    if channel == "sms":
        body = one_line(body)[:SMS_MAX]
    elif channel == "push":
        body = one_line(body)[:BODY_MAX]
    return Rendered(subject, body[:BODY_MAX])


async def custom_templates(reseller_ids: list[int], languages: list[str]
                           ) -> dict[tuple[int | None, str, str, str], tuple[str, str]]:
    """(reseller_id or None, language, event, channel) -> (subject, body) stored."""
    langs = sorted(set(languages) | {FALLBACK_LANGUAGE})
    ids = sorted(set(reseller_ids)) or [0]
    rows = await db.fetch(
        "SELECT reseller_id, language, event, channel, subject, body FROM"
        f" notification_templates WHERE (reseller_id IS NULL OR reseller_id IN"
        f" ({', '.join('?' * len(ids))})) AND language IN ({', '.join('?' * len(langs))})",
        [*ids, *langs])
    return {(None if r["reseller_id"] is None else int(r["reseller_id"]), str(r["language"]),
             str(r["event"]), str(r["channel"])): (str(r["subject"]), str(r["body"]))
            for r in rows}


def pick(stored: dict[tuple[int | None, str, str, str], tuple[str, str]], reseller_id: int,
         language: str, event: str, channel: str) -> tuple[str, str] | None:
    """The reseller's template in the language, else the operator's, else the same in
    'en'; None: the built-in text."""
    for lang in dict.fromkeys((language, FALLBACK_LANGUAGE)):
        for owner in (reseller_id, None):
            found = stored.get((owner, lang, event, channel))
            if found is not None:
                return found
    return None


async def set_template(reseller_id: int | None, language: str, event: str, channel: str,
                       subject: str, body: str) -> None:
    from portal.store.tx import transaction

    check_template(event, subject, body)
    if channel not in ("email", "sms", "push"):
        raise PortalError("invalid_template", f"unknown channel {channel[:20]!r}")
    if not (0 < len(language) <= 16 and language.replace("-", "").isalnum()):
        raise PortalError("invalid_template", "language: a code like en or pt-BR")

    async def write(tx: Any) -> None:
        await db.execute(
            "DELETE FROM notification_templates WHERE COALESCE(reseller_id, 0) = ? AND"
            " language = ? AND event = ? AND channel = ?",
            [reseller_id or 0, language, event, channel])
        await db.execute(
            "INSERT INTO notification_templates (reseller_id, language, event, channel,"
            " subject, body) VALUES (?, ?, ?, ?, ?, ?)",
            [reseller_id, language, event, channel, subject, body])

    await transaction(write)
