"""Issue 22: the built-in notification texts in every language the portal speaks.

Every event x channel (and each wording variant: daily or monthly tier, receipt,
invoice or credit note, one or many days) renders in French and Arabic from the
Babel catalogs, with no English left; dates and amounts in the language's CLDR
formats. And one message end to end: an Arabic expiry reminder through the real
notifier to a local SMTP server (aiosmtpd), its subject RFC 2047-encoded, its body
UTF-8."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date

from portal import i18n
from portal.core import language, notify_templates
from portal.core.notify_templates import Amount
from tests.notifier import helpers
from tests.notifier.helpers import outbox, running, until
from tests.notifier.sinks import SmtpSink

COMMON = {"name": "Rania Khoury", "username": "rania", "company": "Cedar Net",
          "portal_url": "https://portal.cedar.example/customer/"}
# Each event with the values of each of its wording variants.
CASES: list[tuple[str, dict[str, Any]]] = [
    *[("expiry_soon", {"days": n, "expires_on": date(2026, 12, 5), "plan": "Fibre 50"})
      for n in (1, 2, 3, 11, 100)],
    ("expired", {"expires_on": date(2026, 12, 5), "plan": "Fibre 50"}),
    *[("fup_tier", {"period": p, "tier": 2, "down_mbps": Decimal("0.5"),
                    "up_mbps": Decimal(1)}) for p in ("daily", "monthly")],
    ("extra_used_up", {"period": "monthly", "tier": 1, "down_mbps": Decimal(2),
                       "up_mbps": Decimal(1)}),
    ("ticket_answered", {"ticket_id": 42, "ticket_subject": "Wi-Fi"}),
    *[("receipt", {"number": "R-2026-7", "document": kind, "amount": Amount(123450, "USD"),
                   "currency": "USD"}) for kind in ("receipt", "invoice", "credit_note")],
]
WORD = re.compile(r"[A-Za-z]{3,}")
ARABIC = re.compile(r"[\u0600-\u06ff]")


def _english_words(event: str, values: dict[str, Any], channel: str) -> set[str]:
    """The words of the English text that are not in the values (which stay as given)."""
    text = notify_templates.render(event, channel, values, language="en")
    given = set(WORD.findall(" ".join(str(v) for v in values.values())))
    return set(WORD.findall(f"{text.subject} {text.body}")) - given - {"USD"}


def test_every_builtin_text_is_in_each_catalog() -> None:
    for lang in ("fr", "ar"):
        missing = []
        for key, texts in notify_templates.BUILTIN.items():
            for text in texts:
                msgid = text[0] if isinstance(text, tuple) else text
                if not i18n.has(lang, msgid):
                    missing.append((key, msgid))
        for word in (*notify_templates.DOCUMENTS.values(), *notify_templates.PERIODS.values()):
            if not i18n.has(lang, word):
                missing.append(("word", word))
        assert not missing, (lang, missing)


@pytest.mark.parametrize("lang", ["fr", "ar"])
@pytest.mark.parametrize("channel", ["email", "sms", "push"])
def test_every_event_renders_without_english(lang: str, channel: str) -> None:
    covered = set()
    for event, own in CASES:
        values = {**COMMON, **own}
        covered.add(notify_templates.builtin_key(event, values))
        got = notify_templates.render(event, channel, values, language=lang)
        text = f"{got.subject} {got.body}"
        english = _english_words(event, values, channel)
        left = english & set(WORD.findall(text))
        assert not left, (event, own, lang, left, text)
        assert got.subject and got.body and "{" not in text, text
        if lang == "ar":
            assert len(ARABIC.findall(text)) > len(WORD.findall(text)), text
        assert "\n" not in got.subject
    assert covered == set(notify_templates.BUILTIN)  # every built-in wording was seen


def test_values_in_the_languages_formats_and_plurals() -> None:
    def body(event: str, lang: str, **own: Any) -> str:
        case = dict(next(v for e, v in CASES if e == event))
        case.update(own)
        return notify_templates.render(event, "email", {**COMMON, **case}, language=lang).body

    assert "5 décembre 2026" in body("expired", "fr")
    assert "5 ديسمبر 2026" in body("expired", "ar")
    assert "December 5, 2026" in body("expired", "en")
    assert "1\u202f234,50 USD" in body("receipt", "fr")
    assert "1,234.50 USD" in body("receipt", "en")
    # The currency's own digits: LBP has none, JOD three.
    assert "1\u202f234 LBP" in body("receipt", "fr", amount=Amount(1234, "LBP"),
                                      currency="LBP")
    assert "1.234 JOD" in body("receipt", "en", amount=Amount(1234, "JOD"), currency="JOD")
    assert "0,5/1 Mbit/s" in body("fup_tier", "fr")
    # Arabic's plural forms: one, two, few (3-10), many (11-99), other.
    days = {n: body("expiry_soon", "ar", days=n) for n in (1, 2, 3, 11, 100)}
    assert "خلال يوم واحد" in days[1] and "خلال يومين" in days[2]
    assert "خلال 3 أيام" in days[3] and "خلال 11 يومًا" in days[11]
    assert "خلال 100 يوم" in days[100]
    assert "(dans 1 jour)" in body("expiry_soon", "fr", days=1)
    assert "(dans 3 jours)" in body("expiry_soon", "fr", days=3)
    # A stored template gets the same values, shown in its language.
    got = notify_templates.render(
        "receipt", "email", {**COMMON, **dict(CASES[-1][1])}, language="fr",
        custom=("{{ document|capitalize }} {{ number }}", "{{ amount }} {{ currency }}"))
    assert (got.subject, got.body) == ("Avoir R-2026-7", "1\u202f234,50 USD")


def test_a_template_in_the_subscribers_language_wins() -> None:
    stored = {(None, "en", "receipt", "email"): ("en*", ""),
              (7, "fr", "receipt", "email"): ("fr7", "")}
    assert notify_templates.pick(stored, 7, "fr", "receipt", "email") == ("fr7", "")
    # Arabic has built-in texts: an English template does not replace them...
    assert notify_templates.pick(stored, 7, "ar", "receipt", "email") is None
    # ...while a language without built-in texts still takes the English template.
    assert notify_templates.pick(stored, 7, "de", "receipt", "email") == ("en*", "")


async def test_arabic_expiry_reminder_through_smtp(db: str, smtp: SmtpSink) -> None:
    await helpers.customer("rania", email="rania@home.example", full_name="رانيا خوري",
                           expires_in=timedelta(days=2, hours=1))
    await language.set_language("rania", "ar")
    settings = helpers.settings(smtp.port)
    async with running(settings):
        await until(lambda: smtp.to("rania@home.example"), 10.0, "the Arabic reminder")
    (mail,) = smtp.to("rania@home.example")
    (raw,) = smtp.raw
    expires = (datetime.now(UTC) + timedelta(days=2, hours=1)).astimezone(
        ZoneInfo(settings.timezone)).date()
    subject = "تنتهي باقتك Basic خلال 3 أيام"
    assert mail["Subject"] == subject
    # On the wire the header is RFC 2047 (encoded-words, ASCII only), never raw UTF-8.
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii()
    line = re.search(rb"^Subject: (.*(?:\r\n[ \t].*)*)", headers, re.M)
    assert line and line.group(1).lower().startswith(b"=?utf-8?"), headers
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    body = mail.get_content().strip()
    assert body.startswith("مرحبًا رانيا خوري، تنتهي باقتك Basic لدى ")
    assert f"في {format_date(expires, 'long', locale='ar')} (خلال 3 أيام)" in body
    assert body.endswith("جدّدها عبر البوابة: https://portal.acme.example/customer/")
    assert body.encode("utf-8") in mail.get_payload(decode=True)
    (row,) = await outbox("rania")
    assert (row["language"], row["subject"], row["state"]) == ("ar", subject, "sent")
