"""The portal's languages: gettext catalogs (Babel) and CLDR formats, for every layer.

A leaf like portal.config: it imports no layer, so the web pages, the API error
handler, the PDF invoice (core) and notifications all translate the same way.
The catalogs are the .po files in locale/ (msgids are the English text; English
needs no catalog). They are read and compiled in memory once per process, so a
fresh clone or `pip install -e .` needs no build step and no binary is committed.
Update them with `scripts/i18n-update` (pybabel extract + update, babel.cfg).
"""

from __future__ import annotations

import gettext as gettext_module
import io
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES: tuple[str, ...] = ("en", "fr", "ar")  # the order the portal offers them
DEFAULT = "en"
RTL: frozenset[str] = frozenset({"ar"})
# Each language's name in itself (the language menu shows these, never translated).
NAMES: Mapping[str, str] = {"en": "English", "fr": "Français", "ar": "العربية"}
SHORT_NAMES: Mapping[str, str] = {"en": "EN", "fr": "FR", "ar": "ع"}  # the menu button


def N_(message: str) -> str:
    """Marks a message for extraction (scripts/i18n-update); translated where it is shown."""
    return message


def Nn_(singular: str, plural: str) -> tuple[str, str]:
    """Marks a message with a plural for extraction; translated with ngettext where shown."""
    return singular, plural


def direction(language: str) -> str:
    return "rtl" if language in RTL else "ltr"


def known(language: str | None) -> str:
    return language if language is not None and language in LANGUAGES else DEFAULT


@cache
def catalog(language: str) -> Catalog:
    """The parsed .po of a language (an empty catalog for English)."""
    path = LOCALE_DIR / f"{language}.po"
    if language == DEFAULT or not path.exists():
        return Catalog(locale=DEFAULT)
    with path.open("rb") as fh:
        return read_po(fh, locale=language)


@cache
def translations(language: str) -> NullTranslations:
    """gettext translations compiled in memory from the .po (fuzzy entries left out)."""
    if language == DEFAULT:
        return NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, catalog(language), use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer)


def gettext(language: str, message: str, **params: Any) -> str:
    text = translations(known(language)).gettext(message)
    return text.format(**params) if params else text


def ngettext(language: str, singular: str, plural: str, n: int, **params: Any) -> str:
    text = translations(known(language)).ngettext(singular, plural, n)
    return text.format(n=n, **params)


def pgettext(language: str, context: str, message: str, **params: Any) -> str:
    text = str(translations(known(language)).pgettext(context, message))
    return text.format(**params) if params else text


def has(language: str, message: str, context: str | None = None) -> bool:
    """The catalog translates this message (English translates everything)."""
    if known(language) == DEFAULT:
        return True
    entry = catalog(language).get(message, context)
    if entry is None or entry.fuzzy:
        return False
    string = entry.string
    return bool(string if isinstance(string, str) else string and all(string))


# --- the JavaScript's catalog -------------------------------------------------------


def _plural_categories(language: str) -> dict[str, int]:
    """CLDR plural category (what Intl.PluralRules.select says) -> gettext form index."""
    rule = Locale.parse(language).plural_form
    form = gettext_module.c2py(catalog(language).plural_expr)  # the .po's Plural-Forms
    out: dict[str, int] = {}
    for n in [*range(0, 200), 1000, 1000000, 2000000]:
        out.setdefault(rule(n), form(n))
    return out


@cache
def js_catalog(language: str) -> dict[str, Any]:
    """{"language", "dir", "messages": {msgid: text | {category: text}}}: what
    portal/web/static/app.js translates with; keys "ctx\\x04msgid" carry a context."""
    language = known(language)
    messages: dict[str, Any] = {}
    if language != DEFAULT:
        forms = _plural_categories(language)
        for message in catalog(language):
            if not message.id or message.fuzzy:
                continue
            key = str(message.id if isinstance(message.id, str) else message.id[0])
            if message.context:
                key = f"{message.context}\x04{key}"
            if isinstance(message.string, tuple):
                if all(message.string):
                    messages[key] = {category: message.string[index]
                                     for category, index in forms.items()}
            elif message.string:
                messages[key] = message.string
    return {"language": language, "dir": direction(language), "messages": messages}


# --- formats (CLDR through Babel) -----------------------------------------------------


def money(minor: int, currency: str, language: str, digits: int = 2) -> str:
    """An amount in the currency's minor units (`digits`: 0 for LBP, 3 for JOD) with its
    currency, as the locale writes it: "1,50 $US" in French."""
    return format_currency(Decimal(minor) / (10 ** digits), currency, locale=known(language),
                           format_type="standard")


def amount(minor: int, language: str, digits: int = 2) -> str:
    """An amount in the currency's minor units, without its currency (a column headed
    by it): 1 234,50 in French; `digits` is the currency's (0 for LBP, 3 for JOD)."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(Decimal(minor) / (10 ** digits), format=pattern,
                          locale=known(language))


def percent(basis_points: int, language: str) -> str:
    """1100 -> "11 %" in French: CLDR percent pattern, up to 2 decimals."""
    return format_percent(Decimal(basis_points) / 10000, format=None, locale=known(language),
                          decimal_quantization=False)


def number(value: float | int | Decimal, language: str) -> str:
    return format_decimal(value, locale=known(language))


def long_date(value: date | datetime, language: str) -> str:
    return format_date(value, "long", locale=known(language))


def date_time(value: datetime, language: str) -> str:
    return format_datetime(value, "medium", locale=known(language))


def from_accept_language(header: str | None) -> str | None:
    """The best of LANGUAGES for an Accept-Language header ("fr-LB,ar;q=0.8"),
    None when it names none of them. Ties keep the header's order."""
    best: tuple[float, int, str] | None = None
    for position, part in enumerate((header or "")[:512].split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and 0 < quality <= 1:
            candidate = (-quality, position, primary)
            if best is None or candidate < best:
                best = candidate
    return best[2] if best else None
