"""Append-only records: wallet ledger, audit log, change journal, security state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from portal.store.models.business import Subscriber


class WalletEntry(Model):
    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="wallet_entries", on_delete=fields.RESTRICT
    )
    subscriber_id: int
    amount_cents: fields.Field[int] = fields.BigIntField()  # + credit, - debit
    balance_after_cents: fields.Field[int] = fields.BigIntField()
    reason = fields.CharField(max_length=32)
    reference = fields.CharField(max_length=128, default="")
    created_by = fields.CharField(max_length=128, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "wallet_entries"


class AuditLog(Model):
    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    actor = fields.CharField(max_length=128)
    username = fields.CharField(max_length=64, null=True, db_index=True)
    action = fields.CharField(max_length=64)
    detail = fields.TextField(default="")
    ip = fields.CharField(max_length=45, default="")

    class Meta:
        table = "audit_log"


class ChangeJournal(Model):
    """One row per enforcement-relevant change; dns_filter and the enforcer follow it."""

    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    username = fields.CharField(max_length=64, null=True)
    kind = fields.CharField(max_length=32)
    payload = fields.TextField(default="{}")
    # Who wrote the row (the journal contract's origins: portal, cli, enforcer, ingest).
    origin = fields.CharField(max_length=32, default="portal")

    class Meta:
        table = "change_journal"


class LoginFailure(Model):
    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    ip = fields.CharField(max_length=45)
    username = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField()
    # customer | operator: the two logins keep separate counters.
    kind = fields.CharField(max_length=16, default="customer")

    class Meta:
        table = "login_failures"
        indexes = (("ip", "created_at"), ("username", "kind", "created_at"))


class RevokedToken(Model):
    jti = fields.CharField(max_length=64, primary_key=True)
    username = fields.CharField(max_length=64)
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "revoked_tokens"
