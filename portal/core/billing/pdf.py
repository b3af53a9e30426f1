"""An invoice or credit note as a PDF (fpdf2).

Noto Sans with Noto Sans Arabic and Symbols (→) as fallbacks (portal/fonts, SIL OFL) and
HarfBuzz text shaping, so names in Arabic join and run right to left.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF

from portal.core.billing.tax import split_inclusive
from portal.core.money import fmt
from portal.store.models import Invoice, InvoiceLine

FONTS = Path(__file__).parent / "fonts"
TITLES = {"invoice": "Tax invoice", "credit_note": "Credit note", "receipt": "Receipt"}


def _pdf() -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, 18)
    for family, file in (("NotoSans", "NotoSans"), ("NotoSansArabic", "NotoSansArabic"),
                         ("NotoSansSymbols", "NotoSansSymbols")):
        pdf.add_font(family, "", str(FONTS / f"{file}-Regular.ttf"))
        pdf.add_font(family, "B", str(FONTS / f"{file}-Bold.ttf"))
    pdf.set_fallback_fonts(["NotoSansArabic", "NotoSansSymbols"])
    pdf.set_text_shaping(True)
    return pdf


def _font(pdf: FPDF, style: str, size: float) -> None:
    """Select Noto Sans, always re-emitting it: after fallback-font text fpdf2 2.8 can
    believe Noto Sans is still current when the PDF says Noto Sans Arabic."""
    pdf.set_font("NotoSansArabic", style, size)
    pdf.set_font("NotoSans", style, size)


def _percent(bp: int) -> str:
    text = f"{bp // 100}.{bp % 100:02d}".rstrip("0").rstrip(".")
    return f"{text}%"


def render(invoice: Invoice, lines: list[InvoiceLine]) -> bytes:
    pdf = _pdf()
    pdf.set_title(f"{TITLES[invoice.kind]} {invoice.number}")
    pdf.add_page()
    width = pdf.epw
    cur = invoice.currency

    _font(pdf, "B", 16)
    pdf.multi_cell(width, 8, invoice.company_name, new_x="LMARGIN", new_y="NEXT")
    _font(pdf, "", 9)
    if invoice.registration:
        pdf.multi_cell(width, 5, invoice.registration, new_x="LMARGIN", new_y="NEXT")
    _font(pdf, "", 9)
    pdf.ln(6)

    _font(pdf, "B", 14)
    pdf.cell(width, 8, f"{TITLES[invoice.kind]} {invoice.number}", new_x="LMARGIN", new_y="NEXT")
    _font(pdf, "", 10)
    pdf.cell(width, 6, f"Issue date: {invoice.issued_at.date().isoformat()}",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    _font(pdf, "B", 10)
    pdf.cell(width, 6, "Billed to", new_x="LMARGIN", new_y="NEXT")
    _font(pdf, "", 10)
    if invoice.customer_name:
        pdf.multi_cell(width, 6, invoice.customer_name, new_x="LMARGIN", new_y="NEXT")
    _font(pdf, "", 10)
    pdf.cell(width, 6, f"Username: {invoice.username}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)

    amount_w = 40
    _font(pdf, "B", 10)
    pdf.cell(width - amount_w, 7, "Description", border="B")
    pdf.cell(amount_w, 7, f"Amount ({cur})", border="B", align="R", new_x="LMARGIN", new_y="NEXT")
    _font(pdf, "", 10)
    for line in lines:
        y = pdf.get_y()
        pdf.multi_cell(width - amount_w, 7, line.description, new_x="RIGHT", new_y="TOP")
        end_y = pdf.get_y()
        _font(pdf, "", 10)
        pdf.set_xy(pdf.l_margin + width - amount_w, y)
        pdf.cell(amount_w, 7, fmt(line.amount_cents, cur), align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(max(pdf.get_y(), end_y))
    pdf.ln(3)

    rows = [(f"Subtotal (excl. tax) ({cur})", fmt(invoice.subtotal_cents, cur)),
            (f"Tax {_percent(invoice.tax_rate_bp)} ({cur})", fmt(invoice.tax_cents, cur)),
            (f"Total ({cur})", fmt(invoice.total_cents, cur))]
    if invoice.kind == "receipt":  # money received, not a sale: no tax lines at all
        rows = [(f"Received ({cur})", fmt(invoice.total_cents, cur))]
    for i, (label, value) in enumerate(rows):
        _font(pdf, "B" if i == len(rows) - 1 else "", 10)
        pdf.cell(width - amount_w, 7, label, align="R")
        pdf.cell(amount_w, 7, value, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    _font(pdf, "", 8)
    note = {"invoice": "Prices include tax.",
            "credit_note": "Refunded to your wallet balance. Amounts include tax.",
            "receipt": "Received into your wallet balance. Not a tax invoice: tax is shown"
                       " on the invoice of what it pays for."}[invoice.kind]
    pdf.multi_cell(width, 4, note, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def check_totals(invoice: Invoice) -> bool:
    """The stored split matches the rule (used by tests and the bench)."""
    return split_inclusive(invoice.total_cents, invoice.tax_rate_bp) == (
        invoice.subtotal_cents, invoice.tax_cents)
