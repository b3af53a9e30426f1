"""Resellers, plans and subscribers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from portal.store.models.wifi import AcsServer


class Reseller(Model):
    id = fields.IntField(primary_key=True)
    parent: fields.ForeignKeyNullableRelation[Reseller] = fields.ForeignKeyField(
        "models.Reseller", related_name="children", null=True, on_delete=fields.RESTRICT
    )
    parent_id: int | None
    name = fields.CharField(max_length=64, unique=True)
    # Branding
    company_name = fields.CharField(max_length=128, default="")
    tagline = fields.CharField(max_length=200, default="")
    footer_text = fields.CharField(max_length=500, default="")
    primary_color = fields.CharField(max_length=7, default="#0b6bcb")
    custom_domain = fields.CharField(max_length=253, null=True, unique=True)
    logo_bytes = fields.BinaryField(null=True)
    logo_content_type = fields.CharField(max_length=32, null=True)
    # Registration details printed on invoices
    registration = fields.CharField(max_length=500, default="")
    tax_rate_bp = fields.IntField(default=0)  # basis points: 1100 = 11%
    currency = fields.CharField(max_length=3, default="USD")
    # Settings
    allow_plan_change = fields.BooleanField(default=False)
    allow_downgrade_refund = fields.BooleanField(default=False)
    price_per_gb_cents = fields.IntField(default=0)
    parental_enabled = fields.BooleanField(default=False)
    allow_self_renewal = fields.BooleanField(default=False)  # "Renew now" from the wallet
    # Where a subscriber short of balance is sent (shown with the shortfall).
    payment_instructions = fields.CharField(max_length=1000, default="")
    payment_contact = fields.CharField(max_length=200, default="")
    # Portal language of its subscribers who chose none (None: 'en'); CHECK in 0017.
    default_language = fields.CharField(max_length=8, null=True)
    # The ACS that manages this reseller's routers (WiFi tab); None hides the tab.
    acs: fields.ForeignKeyNullableRelation[AcsServer] = fields.ForeignKeyField(
        "models.AcsServer", related_name="resellers", null=True, on_delete=fields.SET_NULL
    )
    acs_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "resellers"


class Plan(Model):
    id = fields.IntField(primary_key=True)
    reseller: fields.ForeignKeyRelation[Reseller] = fields.ForeignKeyField(
        "models.Reseller", related_name="plans", on_delete=fields.RESTRICT
    )
    reseller_id: int
    name = fields.CharField(max_length=64)
    down_kbps = fields.IntField()
    up_kbps = fields.IntField()
    price_cents = fields.IntField()
    period_days = fields.IntField(default=30)
    quota_bytes: fields.Field[int] = fields.BigIntField(default=0)  # 0 = unlimited
    offered = fields.BooleanField(default=True)  # offered to customers in Change Plan
    created_at = fields.DatetimeField(auto_now_add=True)
    fup_tiers: fields.ReverseRelation[FupTier]

    class Meta:
        table = "plans"
        unique_together = (("reseller", "name"),)


class FupTier(Model):
    """Past threshold_bytes of daily or monthly usage, the plan drops to this speed."""

    id = fields.IntField(primary_key=True)
    plan: fields.ForeignKeyRelation[Plan] = fields.ForeignKeyField(
        "models.Plan", related_name="fup_tiers", on_delete=fields.CASCADE
    )
    plan_id: int
    period = fields.CharField(max_length=8)  # "daily" | "monthly"
    tier = fields.IntField()  # 1, 2, 3
    threshold_bytes: fields.Field[int] = fields.BigIntField()
    down_kbps = fields.IntField()
    up_kbps = fields.IntField()

    class Meta:
        table = "fup_tiers"
        unique_together = (("plan", "period", "tier"),)


class Subscriber(Model):
    id = fields.IntField(primary_key=True)
    # The PPPoE username: case-sensitive, the only key a customer ever touches.
    username = fields.CharField(max_length=64, unique=True)
    reseller: fields.ForeignKeyRelation[Reseller] = fields.ForeignKeyField(
        "models.Reseller", related_name="subscribers", on_delete=fields.RESTRICT
    )
    reseller_id: int
    plan: fields.ForeignKeyRelation[Plan] = fields.ForeignKeyField(
        "models.Plan", related_name="subscribers", on_delete=fields.RESTRICT
    )
    plan_id: int
    status = fields.CharField(max_length=16, default="active")  # active | disabled
    cycle_start = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    full_name = fields.CharField(max_length=128, default="")
    email = fields.CharField(max_length=254, default="")
    phone = fields.CharField(max_length=32, default="")
    address = fields.CharField(max_length=500, default="")
    # Kept equal to the sum of wallet_entries; CHECK (balance_cents >= 0) in the DDL.
    balance_cents: fields.Field[int] = fields.BigIntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Bumped by a password change, disabling and "sign out everywhere": a token
    # carrying an older epoch is refused (portal/web/auth.py).
    token_epoch = fields.IntField(default=0)
    # Portal, PDF, error and notification language ('en' | 'fr' | 'ar'); None: not chosen
    # yet (the reseller's default applies). portal.core.language resolves it.
    language = fields.CharField(max_length=8, null=True)

    class Meta:
        table = "subscribers"


class ParentalSettings(Model):
    """What dns_filter blocks for one subscriber's home (read through the dns_policy view)."""

    id = fields.IntField(primary_key=True)
    subscriber: fields.OneToOneRelation[Subscriber] = fields.OneToOneField(
        "models.Subscriber", related_name="parental", on_delete=fields.CASCADE
    )
    subscriber_id: int
    enabled = fields.BooleanField(default=False)
    categories = fields.CharField(max_length=500, default="")  # comma-separated, sorted
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "parental_settings"
