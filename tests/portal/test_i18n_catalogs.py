"""The gettext catalogs (issue 20): complete, current, and safe to format.

No server: the .pot must match what scripts/i18n-update extracts from the code, every
French and Arabic entry must be translated (not fuzzy) with the same placeholders, and
every literal the JS passes to t()/tn()/tf() must be in the catalog (pybabel misses a
call nested inside another's arguments: this test catches it before a browser does).
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portal import i18n
from portal.web import language

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)s")


def test_template_is_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts/i18n-update"), "--check"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, "run scripts/i18n-update and translate the new entries"


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_every_entry_translated_with_its_placeholders(lang: str) -> None:
    template = {m.id if isinstance(m.id, str) else m.id[0]
                for m in i18n.catalog(lang) if m.id}
    assert len(template) > 250
    problems = []
    for m in i18n.catalog(lang):
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        wanted = sorted(set(PLACEHOLDER.findall(ids[-1])))
        if m.fuzzy or not all(strings):
            problems.append(("untranslated", ids[0]))
        for s in strings:
            if sorted(set(PLACEHOLDER.findall(s or ""))) != wanted \
                    and not (isinstance(m.id, tuple) and "{n}" not in (s or "")):
                problems.append(("placeholders", ids[0], s))
    assert not problems, problems


def test_every_js_literal_is_in_the_catalog() -> None:
    pot = {m.id if isinstance(m.id, str) else m.id[0] for m in i18n.catalog("fr") if m.id}
    call = re.compile(r"(?<![\w.])(?:ix\.)?(?:t|tn|tf)\(\s*\"((?:[^\"\\]|\\.)*)\"")
    missing = []
    for path in sorted((ROOT / "portal/web/static").rglob("*.js")):
        if "vendor" in path.parts:
            continue
        for literal in call.findall(path.read_text()):
            text = literal.encode().decode("unicode_escape").encode("latin-1").decode()
            if text not in pot:
                missing.append((path.name, text))
    assert not missing, missing


def test_js_catalog_maps_plural_categories_to_forms() -> None:
    ar = i18n.js_catalog("ar")
    assert ar["dir"] == "rtl" and ar["language"] == "ar"
    days = ar["messages"]["{n} day"]
    assert set(days) == {"zero", "one", "two", "few", "many", "other"}
    assert days["two"] == "يومان" and days["few"] == "{n} أيام"
    fr = i18n.js_catalog("fr")["messages"]["{n} day"]
    assert fr["one"] == "{n} jour" and fr["other"] == "{n} jours"
    assert i18n.js_catalog("en")["messages"] == {}
    assert i18n.js_catalog("xx")["language"] == "en"


def test_server_side_formats_follow_the_locale() -> None:
    assert i18n.amount(123456, "fr") == "1\u202f234,56"
    assert i18n.amount(123456, "ar") == "1,234.56"
    assert i18n.ngettext("ar", "{n} day", "{n} days", 2) == "يومان"
    assert i18n.ngettext("fr", "{n} day", "{n} days", 5) == "5 jours"
    assert i18n.long_date(datetime(2026, 12, 2, tzinfo=UTC), "fr") == "2 décembre 2026"
    assert i18n.long_date(datetime(2026, 12, 2, tzinfo=UTC), "ar") == "2 ديسمبر 2026"
    assert "US$" in i18n.money(1250, "USD", "ar")


@pytest.mark.parametrize(("code", "message", "lang", "expected"), [
    ("invalid_credentials", "wrong username or password", "fr",
     "identifiant ou mot de passe incorrect"),
    ("invalid_credentials", "wrong username or password", "ar",
     "اسم المستخدم أو كلمة المرور غير صحيحة"),
    ("invalid_gb", "gb must be a whole number from 1 to 100", "fr",
     "Saisissez un nombre entier de Go dans la limite autorisée."),
    ("invalid_gb", "gb must be a whole number from 1 to 100", "en",
     "gb must be a whole number from 1 to 100"),
    ("some_new_code", "anything at all", "ar", "تعذّر إتمام الطلب."),
])
def test_error_messages_translated_codes_kept(code, message, lang, expected) -> None:
    assert language.error_message(lang, code, message, {}) == expected


def test_every_error_sentence_is_translated() -> None:
    for lang in ("fr", "ar"):
        for message in (*language.MESSAGES, *language.CODES.values(), language.GENERIC):
            assert i18n.has(lang, message), (lang, message)
