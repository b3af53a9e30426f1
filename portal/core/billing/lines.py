"""What an invoice line says, in any of the portal's languages.

A line is stored with a stable `kind` and its values (`params`, JSON), and said at
display and PDF time in the reader's language; the English `description` written at
issue time is kept as it was (old rows have no kind and are shown as stored, old API
clients read it). English says exactly what `description` says, so the two never
disagree. In the other languages, user text inside the sentence (a plan's name, a
payment's reference) is wrapped in Unicode isolates (FSI ... PDI) so it keeps its own
direction inside Arabic; the portal's script turns them into <bdi dir="auto">.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from portal import i18n
from portal.core.money import fmt, minor_units_or_2
from portal.i18n import N_

FSI, PDI = "\u2068", "\u2069"  # first-strong isolate and its end (Unicode bidi)

TEXTS: dict[str, str] = {
    "data_topup": N_("Data top-up — {gb} GB @ {price}"),
    "renewal": N_("Renewal — {plan}, {start} to {end}"),
    "payment": N_("Payment received — {reference}"),
    "plan_change": N_("Plan change {from_plan} → {to_plan}, {remaining_days} of {cycle_days}"
                      " days"),
    "plan_refund": N_("Refund: Plan change {from_plan} → {to_plan}, {remaining_days} of"
                      " {cycle_days} days"),
    "wallet_credit": N_("Wallet credit"),
}
# A kind said differently when a value is there: (kind, value) -> text
WITH = {("wallet_credit", "reference"): N_("Wallet credit — {reference}")}
USER_TEXT = ("plan", "from_plan", "to_plan", "reference")  # isolated, never translated


@dataclass(frozen=True)
class Said:
    """A line's kind and values: what it says, before it is said in a language."""

    kind: str
    params: dict[str, Any]

    def text(self, language: str) -> str:
        return text(self.kind, self.params, language)

    def params_json(self) -> str:
        return json.dumps(self.params, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def data_topup(gb: int, price_per_gb_cents: int, currency: str) -> Said:
    return Said("data_topup", {"gb": gb, "price_per_gb_cents": price_per_gb_cents,
                               "currency": currency})


def renewal(plan: str, start: date, end: date) -> Said:
    return Said("renewal", {"plan": plan, "start": start.isoformat(), "end": end.isoformat()})


def payment(reference: str) -> Said:
    return Said("payment", {"reference": reference})


def plan_change(from_plan: str, to_plan: str, remaining_days: str, cycle_days: str,
                refund: bool) -> Said:
    """Days as proration says them: '12', or '12.5' for part of a day."""
    return Said("plan_refund" if refund else "plan_change",
                {"from_plan": from_plan, "to_plan": to_plan, "remaining_days": remaining_days,
                 "cycle_days": cycle_days})


def wallet_credit(reference: str) -> Said:
    return Said("wallet_credit", {"reference": reference})


def _day(iso: str, language: str) -> str:
    return iso if language == i18n.DEFAULT else i18n.long_date(date.fromisoformat(iso),
                                                               language)


def text(kind: str, params: dict[str, Any], language: str, isolate: bool = True) -> str:
    """The line in `language`; English is the stored description, character for character.
    `isolate=False` leaves out the isolates (the PDF shapes its text itself)."""
    lang = i18n.known(language)
    values: dict[str, Any] = dict(params)
    if kind == "data_topup":
        cents, currency = int(params["price_per_gb_cents"]), str(params["currency"])
        values["price"] = fmt(cents, currency) if lang == i18n.DEFAULT else \
            i18n.money(cents, currency, lang, minor_units_or_2(currency))
        values["gb"] = params["gb"] if lang == i18n.DEFAULT else i18n.number(params["gb"], lang)
    elif kind == "renewal":
        values["start"] = _day(params["start"], lang)
        values["end"] = _day(params["end"], lang)
    elif kind in ("plan_change", "plan_refund") and lang != i18n.DEFAULT:
        for key in ("remaining_days", "cycle_days"):
            values[key] = i18n.number(Decimal(str(params[key])), lang)
    if isolate and lang != i18n.DEFAULT:
        for key in USER_TEXT:
            if key in values:
                values[key] = f"{FSI}{values[key]}{PDI}"
    message = next((said for (k, key), said in WITH.items() if k == kind and params.get(key)),
                   TEXTS[kind])
    return i18n.gettext(lang, message, **values)


def shown(kind: str, params_json: str, description: str, language: str,
          isolate: bool = True) -> str:
    """A stored line in `language`: from its kind when it has one, else as stored."""
    if kind not in TEXTS:
        return description
    try:
        params = json.loads(params_json)
        return text(kind, params, language, isolate)
    except (ValueError, KeyError, TypeError):  # a row written by hand: say what was stored
        return description
