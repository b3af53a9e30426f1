"""Issuing invoices and credit notes inside the charging transaction.

The number comes from a counter row per reseller and year, bumped by one upsert
(INSERT ... ON CONFLICT DO UPDATE ... RETURNING) in the same transaction as the
wallet entry: PostgreSQL holds the row lock until commit and SQLite has one writer, so numbers are
handed out in commit order and a rolled-back purchase returns its number.
The seller's and buyer's details are copied onto the document at issue time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from portal import i18n
from portal.core.billing import lines as line_texts
from portal.core.billing.numbers import invoice_number
from portal.core.billing.tax import split_inclusive
from portal.errors import NotFound
from portal.store import db
from portal.store.models import Invoice, InvoiceLine, Reseller, Subscriber

KINDS = ("invoice", "credit_note", "receipt")


@dataclass(frozen=True)
class Issued:
    """A document just written by `issue` (what its answer and the ledger need of it)."""

    id: int
    number: str
    kind: str
    issued_at: datetime
    currency: str
    subtotal_cents: int
    tax_cents: int
    total_cents: int
    tax_rate_bp: int


@dataclass(frozen=True)
class Line:
    said: line_texts.Said  # what was sold (portal.core.billing.lines), said in any language
    amount_cents: int  # tax-inclusive, positive

    @property
    def description(self) -> str:
        """The English sentence stored beside the kind (old clients read it)."""
        return self.said.text(i18n.DEFAULT)


async def _query(tx: BaseDBAsyncClient, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    if tx.capabilities.dialect == "postgres":
        parts = sql.split("?")
        sql = parts[0] + "".join(f"${i}{p}" for i, p in enumerate(parts[1:], start=1))
    return list(await tx.execute_query_dict(sql, params))


async def next_seq(tx: BaseDBAsyncClient, reseller_id: int, year: int) -> int:
    # One statement: creates the year's counter at 1 or bumps it, and says which.
    rows = await _query(tx, "INSERT INTO invoice_counters (reseller_id, year, last_seq)"
                            " VALUES (?, ?, 1) ON CONFLICT (reseller_id, year)"
                            " DO UPDATE SET last_seq = invoice_counters.last_seq + 1"
                            " RETURNING last_seq", [reseller_id, year])
    return int(rows[0]["last_seq"])


async def issue(tx: BaseDBAsyncClient, sub: Subscriber, reseller: Reseller, kind: str,
                lines: list[Line], now: datetime) -> Issued:
    """Write one document; call it last in the transaction (the counter row is a hot lock)."""
    if kind not in KINDS or not lines:
        raise ValueError("an invoice, credit note or receipt with at least one line")
    if any(line.amount_cents <= 0 for line in lines):
        raise ValueError("invoice lines are positive amounts")
    total = sum(line.amount_cents for line in lines)
    # A receipt acknowledges money received (a credit, a cash payment): no sale, no tax.
    # The tax is on the invoice of what that money buys, so it is never counted twice.
    tax_rate_bp = 0 if kind == "receipt" else reseller.tax_rate_bp
    subtotal, tax = split_inclusive(total, tax_rate_bp)
    seq = await next_seq(tx, reseller.id, now.year)
    issued = Issued(0, invoice_number(now.year, seq), kind, now, reseller.currency, subtotal,
                    tax, total, tax_rate_bp)
    # Plain SQL in the caller's transaction (portal.store.db): every purchase issues one.
    rows = await db.fetch(
        "INSERT INTO invoices (reseller_id, subscriber_id, number, year, seq, kind, issued_at,"
        " company_name, registration, currency, tax_rate_bp, customer_name, username,"
        " subtotal_cents, tax_cents, total_cents)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [reseller.id, sub.id, issued.number, now.year, seq, kind, db.db_time(now),
         reseller.company_name or reseller.name, reseller.registration, reseller.currency,
         tax_rate_bp, sub.full_name, sub.username, subtotal, tax, total])
    issued = replace(issued, id=int(rows[0]["id"]))
    await db.execute_many(
        "INSERT INTO invoice_lines (invoice_id, position, description, kind, params,"
        " amount_cents) VALUES (?, ?, ?, ?, ?, ?)",
        [[issued.id, position, line.description[:255], line.said.kind,
          line.said.params_json(), line.amount_cents]
         for position, line in enumerate(lines, start=1)])
    return issued


def as_json(invoice: Invoice | Issued) -> dict[str, Any]:
    return {
        "id": invoice.id, "number": invoice.number, "kind": invoice.kind,
        "issued_at": invoice.issued_at.isoformat(), "currency": invoice.currency,
        "subtotal_cents": invoice.subtotal_cents, "tax_cents": invoice.tax_cents,
        "total_cents": invoice.total_cents, "tax_rate_bp": invoice.tax_rate_bp,
    }


def line_json(line: InvoiceLine, language: str) -> dict[str, Any]:
    """`description` as issued (English); `kind`, `params` and `description_text`, the line
    said in `language` ('' kind: an old line, whose text is the stored one)."""
    try:
        params = json.loads(line.params or "{}")
    except ValueError:
        params = {}
    return {"description": line.description, "amount_cents": line.amount_cents,
            "kind": line.kind, "params": params,
            "description_text": line_texts.shown(line.kind, line.params, line.description,
                                                 language)}


async def list_for(subscriber_id: int, limit: int = 200,
                   language: str = i18n.DEFAULT) -> list[dict[str, Any]]:
    rows = await Invoice.filter(subscriber_id=subscriber_id).order_by("-issued_at", "-id") \
        .limit(limit).prefetch_related("lines")
    out = []
    for invoice in rows:
        item = as_json(invoice)
        item["lines"] = [line_json(line, language)
                         for line in sorted(invoice.lines, key=lambda x: x.position)]
        out.append(item)
    return out


async def get_for(subscriber_id: int, invoice_id: int) -> tuple[Invoice, list[InvoiceLine]]:
    """Only the signed-in subscriber's own documents; anyone else's id is simply not found."""
    invoice = await Invoice.get_or_none(id=invoice_id, subscriber_id=subscriber_id)
    if invoice is None:
        raise NotFound("unknown_invoice", "no such invoice")
    lines = await InvoiceLine.filter(invoice_id=invoice.id).order_by("position")
    return invoice, lines
