"""Support tickets and the operators who answer them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from portal.store.models.business import Reseller, Subscriber


class Operator(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    # "scrypt$n$r$p$salt_hex$hash_hex": see portal/core/operators.py
    password_hash = fields.CharField(max_length=256)
    active = fields.BooleanField(default=True)
    # None: the ISP's own staff (every ticket); else this reseller's and its sub-resellers'.
    reseller: fields.ForeignKeyNullableRelation[Reseller] = fields.ForeignKeyField(
        "models.Reseller", related_name="operators", null=True, on_delete=fields.RESTRICT
    )
    reseller_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)
    token_epoch = fields.IntField(default=0)  # as Subscriber.token_epoch
    role = fields.CharField(max_length=16, default="admin")  # admin | support
    # RFC 6238 secret (base32; "" = no second factor) and the last step accepted.
    totp_secret = fields.CharField(max_length=64, default="")
    totp_last_step: fields.Field[int] = fields.BigIntField(default=0)
    # A secret shown in the console, waiting for its first valid code ("" = none).
    totp_pending = fields.CharField(max_length=64, default="")

    class Meta:
        table = "operators"


class Ticket(Model):
    id = fields.IntField(primary_key=True)
    subscriber: fields.ForeignKeyRelation[Subscriber] = fields.ForeignKeyField(
        "models.Subscriber", related_name="tickets", on_delete=fields.CASCADE
    )
    subscriber_id: int
    category = fields.CharField(max_length=16)  # slow | no_connection | billing | wifi | other
    subject = fields.CharField(max_length=200)
    status = fields.CharField(max_length=16, default="open")  # open | answered | closed
    # JSON snapshot taken when a "slow internet" ticket is opened (plan, live rate, FUP tier).
    diagnostics = fields.TextField(default="")
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "tickets"
        indexes = (("subscriber_id", "created_at"),)


class TicketMessage(Model):
    id: fields.Field[int] = fields.BigIntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="messages", on_delete=fields.CASCADE
    )
    ticket_id: int
    author_kind = fields.CharField(max_length=16)  # customer | operator
    author = fields.CharField(max_length=64)
    body = fields.TextField()
    # Operator notes for colleagues: never sent to the customer.
    internal = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()

    class Meta:
        table = "ticket_messages"
