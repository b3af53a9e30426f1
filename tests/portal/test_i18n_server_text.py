"""Issue 20: the text the server makes, said in each language (no server, no database).

Invoice lines and WiFi task messages are stored in English beside a stable kind and
its values (migration 0025): English must stay exactly what was always stored; French
and Arabic come from the catalogs with the locale's numbers, dates and amounts, user
text between isolates. A line or task stored before kinds existed is shown as stored.
The PDF prints the lines in the reader's language. Every error code a subscriber can
meet has its sentence in the catalogs.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from portal import i18n
from portal.core.billing import lines, pdf
from portal.core.wifi import messages
from portal.store.models import Invoice, InvoiceLine
from portal.web import language
from tests.support.pdf import pdf_text

ROOT = Path(__file__).resolve().parents[2]
FSI, PDI = "\u2068", "\u2069"
RENEWAL = lines.renewal("Fiber 50", date(2026, 12, 2), date(2027, 1, 1))
REFUND = lines.plan_change("Basic", "Fast", "12.5", "30", refund=True)


@pytest.mark.parametrize(("said", "english"), [
    (lines.data_topup(10, 150, "USD"), "Data top-up — 10 GB @ 1.50"),
    (lines.data_topup(3, 150000, "LBP"), "Data top-up — 3 GB @ 150000"),
    (RENEWAL, "Renewal — Fiber 50, 2026-12-02 to 2027-01-01"),
    (lines.payment("R-12"), "Payment received — R-12"),
    (lines.plan_change("Basic", "Fast", "12", "30", refund=False),
     "Plan change Basic → Fast, 12 of 30 days"),
    (REFUND, "Refund: Plan change Basic → Fast, 12.5 of 30 days"),
    (lines.wallet_credit(""), "Wallet credit"),
    (lines.wallet_credit("cash 5"), "Wallet credit — cash 5"),
])
def test_english_is_what_was_always_stored(said: lines.Said, english: str) -> None:
    assert said.text("en") == english
    # and what the API's description_text says for English, from the stored row
    assert lines.shown(said.kind, said.params_json(), english, "en") == english


@pytest.mark.parametrize(("said", "lang", "expected"), [
    (lines.data_topup(10, 150, "USD"), "fr", "Recharge de données — 10 Go à 1,50\xa0$US"),
    (lines.data_topup(3, 150000, "LBP"), "fr", "Recharge de données — 3 Go à 150\u202f000\xa0£LB"),
    (RENEWAL, "fr", f"Renouvellement — {FSI}Fiber 50{PDI}, du 2 décembre 2026 au 1 janvier 2027"),
    (REFUND, "fr", f"Remboursement : changement d'offre {FSI}Basic{PDI} → {FSI}Fast{PDI},"
                   " 12,5 jours sur 30"),
    (lines.wallet_credit(""), "fr", "Crédit du portefeuille"),
    (RENEWAL, "ar", f"تجديد — {FSI}Fiber 50{PDI}، من 2 ديسمبر 2026 إلى 1 يناير 2027"),
    (REFUND, "ar", f"استرداد: تغيير الباقة من {FSI}Basic{PDI} إلى {FSI}Fast{PDI}، 12.5 من 30 يومًا"),
    (lines.payment("R-12"), "ar", f"دفعة مستلمة — {FSI}R-12{PDI}"),
])
def test_french_and_arabic(said: lines.Said, lang: str, expected: str) -> None:
    assert said.text(lang) == expected
    outside = re.sub(f"{FSI}[^{PDI}]*{PDI}", "", expected)
    if lang == "ar":  # no Latin word but the user's own (isolated) and the currency's
        assert set(re.findall(r"[A-Za-z]{2,}", outside)) <= {"US"}, outside


def test_a_line_without_kind_is_shown_as_stored() -> None:
    assert lines.shown("", "{}", "Installation fee", "fr") == "Installation fee"
    assert lines.shown("data_topup", "not json", "Data top-up", "ar") == "Data top-up"
    assert lines.shown("data_topup", '{"gb": 1}', "Data top-up", "ar") == "Data top-up"
    assert lines.shown("no_such_kind", "{}", "As issued", "ar") == "As issued"


@pytest.mark.parametrize(("code", "params", "stored", "status", "offline", "lang", "expected"), [
    ("next_contact", "{}", "will apply when your router next connects", "pending", True, "fr",
     "Sera appliqué à la prochaine connexion de votre routeur."),
    ("router_refused", '{"code": "cwmp.9007"}', "your router refused the change (cwmp.9007)",
     "faulted", False, "ar", f"رفض جهاز التوجيه التغيير (الرمز {FSI}cwmp.9007{PDI})."),
    ("acs_unavailable", "{}", "the router management service cannot be reached; nothing was"
     " changed", "failed", False, "fr", "Le service de gestion de votre routeur est injoignable"
     " ; rien n'a été modifié."),
    ("router_refused", '{"code": "9007"}', "your router refused the change (9007)", "faulted",
     False, "en", "your router refused the change (9007)"),
    # stored before codes: what the status says, else the stored English
    ("", "{}", "done", "done", False, "fr", "Terminé."),
    ("", "{}", "will apply when your router next connects", "pending", True, "ar",
     "سيُطبَّق عند اتصال جهاز التوجيه في المرة القادمة."),
    ("", "{}", "the router management service failed (HTTP 500)", "failed", False, "fr",
     "the router management service failed (HTTP 500)"),
])
def test_wifi_task_messages(code: str, params: str, stored: str, status: str, offline: bool,
                            lang: str, expected: str) -> None:
    assert messages.text(code, params, stored, status, offline, lang) == expected


def _invoice(kind: str, said: list[lines.Said]) -> tuple[Invoice, list[InvoiceLine]]:
    invoice = Invoice(id=1, number="INV-2026-000042", kind=kind, issued_at=datetime(
        2026, 12, 2, 10, tzinfo=UTC), company_name="Acme Net", registration="", currency="USD",
        tax_rate_bp=1100, customer_name="Rana", username="rana@acme.lb", subtotal_cents=1351,
        tax_cents=149, total_cents=1500)
    rows = [InvoiceLine(position=i, description=s.text("en"), kind=s.kind,
                        params=s.params_json(), amount_cents=500)
            for i, s in enumerate(said, start=1)]
    return invoice, rows


@pytest.mark.parametrize(("lang", "fragments"), [
    ("en", ["Renewal — Fiber 50, 2026-12-02 to 2027-01-01", "Plan change Basic → Fast",
            "Data top-up — 2 GB @ 1.50"]),
    ("fr", ["Renouvellement — Fiber 50, du 2 décembre 2026 au 1 janvier 2027",
            "Changement d'offre Basic → Fast", "Recharge de données — 2 Go à 1,50"]),
    # (pdftotext splits Arabic's lam-alef ligature and reorders mixed runs: single words)
    ("ar", ["تجديد", "Fiber 50", "ديسمبر", "يناير", "تغيير", "الباقة", "شحن", "بيانات"]),
])
def test_pdf_lines_in_the_readers_language(lang: str, fragments: list[str],
                                           tmp_path: Path) -> None:
    invoice, rows = _invoice("invoice", [
        RENEWAL, lines.plan_change("Basic", "Fast", "12", "30", refund=False),
        lines.data_topup(2, 150, "USD")])
    text = pdf_text(pdf.render(invoice, rows, lang), tmp_path)
    for fragment in fragments:
        assert fragment in text, (lang, fragment, text)
    assert FSI not in text and PDI not in text  # isolates are for the screen only
    if lang != "en":
        for english in ("Renewal", "Plan change", "Data top-up", " GB", " to 2027"):
            assert english not in text, (lang, english, text)


def test_pdf_prints_an_old_line_as_issued(tmp_path: Path) -> None:
    invoice, _ = _invoice("invoice", [])
    old = InvoiceLine(position=1, description="Installation fee", kind="", params="{}",
                      amount_cents=1500)
    assert "Installation fee" in pdf_text(pdf.render(invoice, [old], "fr"), tmp_path)


# Codes only an operator meets (CLI, operator console and API): said in English.
OPERATOR_ONLY = {
    "currency_has_amounts", "domain_taken", "duplicate_operator", "duplicate_plan",
    "duplicate_reseller", "duplicate_username", "invalid_age", "invalid_code", "invalid_color",
    "invalid_currency", "invalid_cycle", "invalid_days", "invalid_domain", "invalid_internal",
    "invalid_match", "invalid_name", "invalid_nas", "invalid_password", "invalid_payment",
    "invalid_period", "invalid_plan", "invalid_price", "invalid_role", "invalid_speed",
    "invalid_tax_rate", "invalid_template", "invalid_tier", "invalid_timeout", "invalid_url",
    "invalid_username", "logo_too_large", "logo_type", "nas_exists", "nas_not_found",
    "no_such_operator", "no_such_reseller", "problems_unavailable", "reason_required",
    "reference_required", "role_forbidden", "unknown_action",
    "invalid_notification", "notification_in_flight",  # the console's Resend
    "code_required", "totp_not_started",  # the console's TOTP set-up
}
RAISED = re.compile(r"\b(?:PortalError|Forbidden|NotFound|Conflict|TooManyRequests|"
                    r"Unauthorized|retry)\(\s*f?\"([a-z_{}]+)\"")


def test_every_error_a_subscriber_meets_has_its_sentence() -> None:
    """A new error code in the web or core layer needs its sentence in CODES (or is listed
    here as the operators'): otherwise French and Arabic get the generic sentence."""
    sources = [*ROOT.glob("portal/core/**/*.py"), *ROOT.glob("portal/web/*.py"),
               ROOT / "portal/store/tx.py"]
    raised = {code for path in sources for code in RAISED.findall(path.read_text())}
    # codes built from a name (tickets: missing_{name}...), spelled out
    raised = {c for c in raised if "{" not in c and not c.endswith("_")} | {
        "missing_subject", "missing_message", "subject_too_long", "message_too_long",
        "invalid_subject", "invalid_message", "invalid_plan_id", "invalid_amount_cents"}
    assert len(raised) > 60
    said = set(language.CODES) | set(language.WITH_VALUES)
    missing = sorted(raised - said - OPERATOR_ONLY)
    assert not missing, missing


@pytest.mark.parametrize(("lang", "extra", "expected"), [
    ("fr", {"missing_cents": 1050, "currency": "USD"},
     "Votre solde est insuffisant : il manque 10,50\xa0$US."),
    ("ar", {"missing_cents": 150000, "currency": "LBP"},
     "رصيدك غير كافٍ: يلزم \u200f150,000\xa0ل.ل.\u200f إضافية."),
    ("fr", {"missing_cents": 1050}, "Votre solde est insuffisant pour cela."),  # no currency
    ("en", {"missing_cents": 1050, "currency": "USD"},
     "not enough balance: 10.50 more is needed"),
])
def test_an_error_with_values_says_them(lang: str, extra: dict[str, object],
                                        expected: str) -> None:
    message = "not enough balance: 10.50 more is needed"
    assert language.error_message(lang, "insufficient_funds", message, extra) == expected
    assert i18n.has(lang, language.WITH_VALUES["insufficient_funds"])


async def test_rows_from_before_0025_are_said_as_stored(db: str) -> None:
    """On the real database (SQLite, PostgreSQL): a line and a task written without the
    0025 columns get their defaults and are shown as stored; a new line is said."""
    from portal.core.billing import invoices
    from portal.core.wifi import service
    from portal.store import db as store
    from portal.store.models import WifiTask
    from tests.support import seed

    await seed.reseller_with_plans("acme")
    sub = await seed.subscriber("rana@acme.lb", balance_cents=4250)  # a receipt: a new line
    receipt = await Invoice.get(subscriber_id=sub.id)
    await store.execute("INSERT INTO invoice_lines (invoice_id, position, description,"
                        " amount_cents) VALUES (?, 2, 'Installation fee', 100)", [receipt.id])
    listed = await invoices.list_for(sub.id, language="fr")
    assert [(line["kind"], line["params"], line["description_text"])
            for line in listed[0]["lines"]] == [
        ("wallet_credit", {"reference": "test"}, f"Crédit du portefeuille — {FSI}test{PDI}"),
        ("", {}, "Installation fee")]
    await store.execute("INSERT INTO wifi_tasks (subscriber_id, device_id, action, band, detail,"
                        " status, offline, message, created_at, updated_at) VALUES (?, 'D', 'wifi',"
                        " '5', 'name changed', 'done', ?, 'done', ?, ?)",
                        [sub.id, False, store.db_time(datetime.now(UTC)),
                         store.db_time(datetime.now(UTC))])
    task = service.task_json(await WifiTask.get(subscriber_id=sub.id), "ar")
    assert (task["message"], task["message_code"], task["message_text"]) == ("done", "", "تمّ.")
