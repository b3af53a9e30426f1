"""The wording of notifications: templates per reseller, language, event and channel.

Templates are Jinja2 rendered in a SandboxedEnvironment with a fixed set of
variables (VARIABLES): no attribute of a Python object is reachable and an
unknown variable is an error, so a reseller's template can say nothing but what
it is given. A reseller's own template (notification_templates) in the
subscriber's language wins over the operator's (reseller_id NULL), which wins over
the built-in text in that language (BUILTIN: gettext messages, translated in the
portal's catalogs, portal/i18n/locale, like every other string of the portal). Only
a language without built-in texts falls back to the 'en' templates.
Values are shown in the subscriber's language (format): dates and amounts with
Babel's CLDR formats, document and period words translated.
An e-mail subject is one line: CR, LF and other control characters from any
value are replaced by spaces, so user data never makes a mail header.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from portal import i18n
from portal.core.money import minor_units_or_2
from portal.errors import PortalError
from portal.i18n import N_, Nn_
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


@dataclass(frozen=True)
class Amount:
    """Money as an event holds it: minor units of a currency (shown per language)."""
    minor: int
    currency: str


# The words a template receives for `document` (an invoice's kind) and `period`.
DOCUMENTS = {"receipt": N_("receipt"), "invoice": N_("invoice"),
             "credit_note": N_("credit note")}
PERIODS = {"daily": N_("daily"), "monthly": N_("monthly")}

# The built-in texts: a message, or (singular, plural) counted by `days` ({n}).
# Keys are the event, or "event:variant" where the wording depends on a value.
Text = str | tuple[str, str]
BUILTIN: dict[str, tuple[Text, Text]] = {
    "expiry_soon": (
        Nn_("Your {plan} plan expires in {n} day", "Your {plan} plan expires in {n} days"),
        Nn_("Hello {name}, your {plan} plan with {company} expires on {expires_on} (in {n} "
            "day). Renew it in the portal: {portal_url}",
            "Hello {name}, your {plan} plan with {company} expires on {expires_on} (in {n} "
            "days). Renew it in the portal: {portal_url}")),
    "expired": (
        N_("Your {plan} plan has expired"),
        N_("Hello {name}, your {plan} plan with {company} expired on {expires_on}. Renew it "
           "in the portal: {portal_url}")),
    "fup_tier:daily": (
        N_("You reached your fair-use limit: {down_mbps} Mbps now"),
        N_("Hello {name}, you used your daily allowance (tier {tier}): your speed is "
           "{down_mbps}/{up_mbps} Mbps until it resets. Buy extra data in the portal: "
           "{portal_url}")),
    "fup_tier:monthly": (
        N_("You reached your fair-use limit: {down_mbps} Mbps now"),
        N_("Hello {name}, you used your monthly allowance (tier {tier}): your speed is "
           "{down_mbps}/{up_mbps} Mbps until it resets. Buy extra data in the portal: "
           "{portal_url}")),
    "extra_used_up": (
        N_("Your extra data is used up: {down_mbps} Mbps now"),
        N_("Hello {name}, the extra data you bought is used up: your speed is "
           "{down_mbps}/{up_mbps} Mbps until it resets. {portal_url}")),
    "ticket_answered": (
        N_("Your ticket #{ticket_id} was answered"),
        N_("Hello {name}, {company} answered your ticket #{ticket_id} ({ticket_subject}). "
           "Read it in the portal: {portal_url}")),
    "receipt:receipt": (
        N_("Receipt {number}: {amount} {currency}"),
        N_("Hello {name}, {company} issued receipt {number} for {amount} {currency}. "
           "{portal_url}")),
    "receipt:invoice": (
        N_("Invoice {number}: {amount} {currency}"),
        N_("Hello {name}, {company} issued invoice {number} for {amount} {currency}. "
           "{portal_url}")),
    "receipt:credit_note": (
        N_("Credit note {number}: {amount} {currency}"),
        N_("Hello {name}, {company} issued credit note {number} for {amount} {currency}. "
           "{portal_url}")),
}


def builtin_key(event: str, values: dict[str, Any]) -> str:
    """Which BUILTIN entry tells this event (the variant its values call for)."""
    if event == "fup_tier":
        return f"fup_tier:{values['period'] if values['period'] in PERIODS else 'monthly'}"
    if event == "receipt":
        kind = values["document"]
        return f"receipt:{kind if kind in DOCUMENTS else 'receipt'}"
    return event


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


RAW_TYPES = (str, int, Decimal, date, Amount)


def localize(values: dict[str, Any], language: str) -> dict[str, str | int]:
    """An event's values as a template shows them in `language`: dates (long) and
    numbers with Babel's CLDR formats, amounts with the currency's digits, the document
    and period words translated; text and whole numbers as they are."""
    lang = i18n.known(language)
    out: dict[str, str | int] = {}
    for key, value in values.items():
        if isinstance(value, bool):
            raise ValueError(f"{key}: true/false is not a template value")
        if isinstance(value, Amount):
            out[key] = i18n.amount(value.minor, lang, minor_units_or_2(value.currency))
        elif isinstance(value, date):
            out[key] = i18n.long_date(value, lang)
        elif isinstance(value, Decimal):
            out[key] = i18n.number(value, lang)
        elif key == "document" and isinstance(value, str):
            out[key] = i18n.gettext(lang, DOCUMENTS.get(value, value))
        elif key == "period" and isinstance(value, str):
            out[key] = i18n.gettext(lang, PERIODS.get(value, value))
        else:
            out[key] = value
    return out


def _builtin(event: str, values: dict[str, Any], shown: dict[str, str | int],
             language: str) -> tuple[str, str]:
    texts = []
    for text in BUILTIN[builtin_key(event, values)]:
        if isinstance(text, tuple):
            texts.append(i18n.ngettext(language, text[0], text[1], int(values["days"]),
                                       **shown))
        else:
            texts.append(i18n.gettext(language, text, **shown))
    return texts[0], texts[1]


def render(event: str, channel: str, values: dict[str, Any],
           custom: tuple[str, str] | None = None, language: str = FALLBACK_LANGUAGE
           ) -> Rendered:
    """The message for an event on a channel in `language`: `custom` (subject, body) or
    the built-in text, with the values formatted for the language.

    `values` must hold exactly the event's variables, as text, whole numbers, Decimal,
    dates or Amount; anything else is refused, and a template only ever receives text
    and whole numbers, so it never walks an object's attributes.
    """
    allowed = set(COMMON) | set(VARIABLES[event])
    if set(values) != allowed:
        raise ValueError(f"{event}: variables {sorted(set(values) ^ allowed)} differ")
    if any(not isinstance(v, RAW_TYPES) for v in values.values()):
        raise ValueError(f"{event}: only text, numbers, dates and amounts are passed")
    shown = localize(values, language)
    if custom is not None:
        subject, body = _render_one(custom[0], shown), _render_one(custom[1], shown)
    else:
        subject, body = _builtin(event, values, shown, language)
    subject = one_line(subject)[:SUBJECT_MAX]
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
    """The reseller's template in the language, else the operator's; None: the built-in
    text in that language. A language the portal has no built-in texts for falls back
    to the 'en' templates before the (English) built-in text."""
    languages = [language] if language in i18n.LANGUAGES else [language, FALLBACK_LANGUAGE]
    for lang in dict.fromkeys(languages):
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
