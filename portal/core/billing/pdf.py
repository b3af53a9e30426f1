"""An invoice or credit note as a PDF (fpdf2).

Noto Sans with Noto Sans Arabic and Symbols (→) as fallbacks (portal/fonts, SIL OFL) and
HarfBuzz text shaping, so names in Arabic join and run right to left.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF

from portal import i18n
from portal.core.billing import lines as line_texts
from portal.core.billing.tax import split_inclusive
from portal.core.money import fmt, minor_units_or_2
from portal.i18n import N_
from portal.store.models import Invoice, InvoiceLine

FONTS = Path(__file__).parent / "fonts"
TITLES = {"invoice": N_("Tax invoice {number}"), "credit_note": N_("Credit note {number}"),
          "receipt": N_("Receipt {number}")}
NOTES = {"invoice": N_("Prices include tax."),
         "credit_note": N_("Refunded to your wallet balance. Amounts include tax."),
         "receipt": N_("Received into your wallet balance. Not a tax invoice: tax is shown"
                       " on the invoice of what it pays for.")}


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


def _percent(bp: int, language: str = i18n.DEFAULT) -> str:
    if language != i18n.DEFAULT:
        return i18n.percent(bp, language)
    text = f"{bp // 100}.{bp % 100:02d}".rstrip("0").rstrip(".")
    return f"{text}%"


def render(invoice: Invoice, lines: list[InvoiceLine], language: str = i18n.DEFAULT) -> bytes:
    """The document in the subscriber's language (labels, date, amounts, what was sold:
    a line issued before lines had a kind is printed as issued). Arabic mirrors the layout."""
    lang = i18n.known(language)

    def _(message: str, **params: object) -> str:
        return i18n.gettext(lang, message, **params)

    def money(minor: int) -> str:  # English keeps the figures it always printed
        if lang == i18n.DEFAULT:
            return fmt(minor, invoice.currency)
        return i18n.amount(minor, lang, minor_units_or_2(invoice.currency))

    rtl = lang in i18n.RTL
    start, end = ("R", "L") if rtl else ("L", "R")  # text's start side, amounts' side
    pdf = _pdf()
    title = _(TITLES[invoice.kind], number=invoice.number)
    pdf.set_title(title)
    pdf.set_lang(lang)
    pdf.add_page()
    width = pdf.epw
    cur = invoice.currency

    _font(pdf, "B", 16)
    pdf.multi_cell(width, 8, invoice.company_name, align=start, new_x="LMARGIN", new_y="NEXT")
    _font(pdf, "", 9)
    if invoice.registration:
        pdf.multi_cell(width, 5, invoice.registration, align=start, new_x="LMARGIN",
                       new_y="NEXT")
    _font(pdf, "", 9)
    pdf.ln(6)

    _font(pdf, "B", 14)
    pdf.cell(width, 8, title, align=start, new_x="LMARGIN", new_y="NEXT")
    _font(pdf, "", 10)
    issued = invoice.issued_at.date()
    pdf.cell(width, 6, _(N_("Issue date: {date}"),
                         date=issued.isoformat() if lang == i18n.DEFAULT
                         else i18n.long_date(issued, lang)),
             align=start, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    _font(pdf, "B", 10)
    pdf.cell(width, 6, _(N_("Billed to")), align=start, new_x="LMARGIN", new_y="NEXT")
    _font(pdf, "", 10)
    if invoice.customer_name:
        pdf.multi_cell(width, 6, invoice.customer_name, align=start, new_x="LMARGIN",
                       new_y="NEXT")
    _font(pdf, "", 10)
    pdf.cell(width, 6, _(N_("Username: {username}"), username=invoice.username), align=start,
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)

    amount_w = 40
    text_x = pdf.l_margin + (amount_w if rtl else 0)
    amount_x = pdf.l_margin + (0 if rtl else width - amount_w)

    def row(text: str, value: str, style: str, border: str = "", h: float = 7,
            text_align: str = start) -> None:
        y = pdf.get_y()
        _font(pdf, style, 10)
        pdf.set_xy(text_x, y)
        pdf.multi_cell(width - amount_w, h, text, border=border, align=text_align,
                       new_x="RIGHT", new_y="NEXT")
        end_y = pdf.get_y()
        _font(pdf, style, 10)
        pdf.set_xy(amount_x, y)
        pdf.cell(amount_w, h, value, border=border, align=end, new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(max(pdf.get_y(), end_y))

    row(_(N_("Description")), _(N_("Amount ({currency})"), currency=cur), "B", border="B")
    for line in lines:  # said in the reader's language (an old line: as it was issued)
        row(line_texts.shown(line.kind, line.params, line.description, lang, isolate=False),
            money(line.amount_cents), "")
    pdf.ln(3)

    rows = [(_(N_("Subtotal (excl. tax) ({currency})"), currency=cur),
             money(invoice.subtotal_cents)),
            (_(N_("Tax {rate} ({currency})"), rate=_percent(invoice.tax_rate_bp, lang),
               currency=cur), money(invoice.tax_cents)),
            (_(N_("Total ({currency})"), currency=cur), money(invoice.total_cents))]
    if invoice.kind == "receipt":  # money received, not a sale: no tax lines at all
        rows = [(_(N_("Received ({currency})"), currency=cur), money(invoice.total_cents))]
    for i, (label, value) in enumerate(rows):
        row(label, value, "B" if i == len(rows) - 1 else "", text_align=end)
    pdf.ln(6)
    _font(pdf, "", 8)
    pdf.multi_cell(width, 4, _(NOTES[invoice.kind]), align=start, new_x="LMARGIN",
                   new_y="NEXT")
    return bytes(pdf.output())


def check_totals(invoice: Invoice) -> bool:
    """The stored split matches the rule (used by tests and the bench)."""
    return split_inclusive(invoice.total_cents, invoice.tax_rate_bp) == (
        invoice.subtotal_cents, invoice.tax_cents)
