"""Billing: data top-ups, invoices with gap-free numbers, idempotency keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from portal.store.models.business import Plan, Reseller, Subscriber


class Topup(Model):
    """Data bought for one billing cycle: raises that cycle's allowance, expires at its reset."""

    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="topups", on_delete=fields.RESTRICT
    )
    subscriber_id: int
    gb = fields.IntField()
    bytes: fields.Field[int] = fields.BigIntField()
    price_per_gb_cents = fields.IntField()
    amount_cents: fields.Field[int] = fields.BigIntField()
    cycle_start = fields.DatetimeField()  # the cycle it was bought in
    invoice: fields.ForeignKeyNullableRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="topups", null=True, on_delete=fields.RESTRICT
    )
    invoice_id: int | None
    created_at = fields.DatetimeField()

    class Meta:
        table = "topups"
        indexes = (("subscriber_id", "created_at"),)


class InvoiceCounter(Model):
    """The last number issued per reseller and year; bumped inside the charging transaction."""

    id = fields.IntField(primary_key=True)
    reseller: fields.ForeignKeyRelation[Reseller] = fields.ForeignKeyField(
        "models.Reseller", related_name="invoice_counters", on_delete=fields.RESTRICT
    )
    reseller_id: int
    year = fields.IntField()
    last_seq = fields.IntField(default=0)

    class Meta:
        table = "invoice_counters"
        unique_together = (("reseller", "year"),)


class Invoice(Model):
    """An immutable document: the seller's and buyer's details are copied at issue time."""

    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    reseller: fields.ForeignKeyRelation[Reseller] = fields.ForeignKeyField(
        "models.Reseller", related_name="invoices", on_delete=fields.RESTRICT
    )
    reseller_id: int
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="invoices", on_delete=fields.RESTRICT
    )
    subscriber_id: int
    number = fields.CharField(max_length=32)
    year = fields.IntField()
    seq = fields.IntField()
    kind = fields.CharField(max_length=16)  # invoice | credit_note | receipt
    issued_at = fields.DatetimeField()
    company_name = fields.CharField(max_length=128)
    registration = fields.CharField(max_length=500)
    currency = fields.CharField(max_length=3)
    tax_rate_bp = fields.IntField()
    customer_name = fields.CharField(max_length=128)
    username = fields.CharField(max_length=64)
    subtotal_cents: fields.Field[int] = fields.BigIntField()
    tax_cents: fields.Field[int] = fields.BigIntField()
    total_cents: fields.Field[int] = fields.BigIntField()
    lines: fields.ReverseRelation[InvoiceLine]

    class Meta:
        table = "invoices"
        unique_together = (("reseller", "year", "seq"),)
        indexes = (("subscriber_id", "issued_at"),)


class InvoiceLine(Model):
    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    invoice: fields.ForeignKeyRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="lines", on_delete=fields.CASCADE
    )
    invoice_id: int
    position = fields.IntField()
    description = fields.CharField(max_length=255)  # English, as issued (old clients)
    # What was sold, said in any language (portal.core.billing.lines); '' on old rows
    kind = fields.CharField(max_length=32, default="")
    params = fields.TextField(default="{}")  # JSON object: the kind's values
    # tax-inclusive, like every price we show
    amount_cents: fields.Field[int] = fields.BigIntField()

    class Meta:
        table = "invoice_lines"


class IdempotencyKey(Model):
    """A purchase's first answer, stored in the charging transaction; a retry replays it."""

    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="idempotency_keys", on_delete=fields.CASCADE
    )
    subscriber_id: int
    key = fields.CharField(max_length=128)
    request_hash = fields.CharField(max_length=64)
    status = fields.IntField()
    response = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "idempotency_keys"
        unique_together = (("subscriber", "key"),)


class PlanChange(Model):
    """A committed plan change (migration 0012): the daily limit counts these."""

    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="plan_changes", on_delete=fields.RESTRICT
    )
    subscriber_id: int
    from_plan_id = fields.IntField()
    to_plan_id = fields.IntField()
    amount_cents: fields.Field[int] = fields.BigIntField()
    changed_at = fields.DatetimeField()  # the server's clock at commit

    class Meta:
        table = "plan_changes"
        indexes = (("subscriber_id", "changed_at"),)


class PrepaidCycle(Model):
    """A paid billing cycle: ahead (started_at empty until the enforcer starts it at the
    old expiry) or, for a renewal after expiry, started at once."""

    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="prepaid_cycles", on_delete=fields.RESTRICT
    )
    subscriber_id: int
    plan: fields.ForeignKeyRelation[Plan] = fields.ForeignKeyField(
        "models.Plan", related_name="prepaid_cycles", on_delete=fields.RESTRICT
    )
    plan_id: int
    starts_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    paid_by = fields.CharField(max_length=16)  # wallet | cash | free
    amount_cents: fields.Field[int] = fields.BigIntField()
    reference = fields.CharField(max_length=128, default="")
    created_by = fields.CharField(max_length=128, default="")
    created_at = fields.DatetimeField()
    started_at = fields.DatetimeField(null=True)
    invoice: fields.ForeignKeyNullableRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="prepaid_cycles", null=True, on_delete=fields.RESTRICT
    )
    invoice_id: int | None

    class Meta:
        table = "prepaid_cycles"
