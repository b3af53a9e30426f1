"""Operator actions on reseller branding and settings."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.core import money
from portal.core.subscribers import COLOR_RE, get_reseller
from portal.errors import Conflict, PortalError
from portal.store import journal
from portal.store.models import Plan, Reseller, Subscriber
from portal.store.tx import transaction

LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
MAX_LOGO_BYTES = 256 * 1024
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def payment(reseller: Reseller) -> dict[str, str]:
    """How to pay this reseller (issue 19): every answer that can show a shortfall carries
    it, so the subscriber learns what to do where money is short."""
    return {"instructions": reseller.payment_instructions, "contact": reseller.payment_contact}


def logo_type(data: bytes, filename: str | None) -> str:
    """PNG, JPEG or SVG by content, not by name. Anything else is refused."""
    if len(data) > MAX_LOGO_BYTES:
        raise PortalError("logo_too_large", f"logo must be at most {MAX_LOGO_BYTES // 1024} KB")
    for magic, ctype in LOGO_TYPES.items():
        if data.startswith(magic):
            return ctype
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:2048].lower()):
        return "image/svg+xml"
    raise PortalError("logo_type", "logo must be a PNG, JPEG or SVG image")


async def brand(
    name: str, *, company_name: str | None = None, tagline: str | None = None,
    footer_text: str | None = None, primary_color: str | None = None,
    custom_domain: str | None = None, registration: str | None = None,
    logo: bytes | None = None, logo_filename: str | None = None,
) -> Reseller:
    r = await get_reseller(name)
    fields: dict[str, object] = {}
    for key, value, limit in (("company_name", company_name, 128), ("tagline", tagline, 200),
                              ("footer_text", footer_text, 500),
                              ("registration", registration, 500)):
        if value is not None:
            if len(value) > limit:
                raise PortalError("too_long", f"{key} must be at most {limit} characters")
            fields[key] = value
    if primary_color is not None:
        if not COLOR_RE.fullmatch(primary_color):
            raise PortalError("invalid_color", "colour must look like #1a2b3c")
        fields["primary_color"] = primary_color.lower()
    if custom_domain is not None:
        domain = custom_domain.strip().lower().rstrip(".")
        if domain and not DOMAIN_RE.fullmatch(domain):
            raise PortalError("invalid_domain", f"not a domain name: {custom_domain!r}")
        if domain and await Reseller.filter(custom_domain=domain).exclude(id=r.id).exists():
            raise Conflict("domain_taken", f"{domain} is already used by another reseller")
        fields["custom_domain"] = domain or None
    if logo is not None:
        fields["logo_content_type"] = logo_type(logo, logo_filename)
        fields["logo_bytes"] = logo

    async def write(tx: BaseDBAsyncClient) -> None:
        await Reseller.filter(id=r.id).using_db(tx).update(**fields)
        await journal.audit(tx, "operator:cli", "reseller.brand", None, reseller=name,
                            fields=sorted(fields))

    await transaction(write)
    return await Reseller.get(id=r.id)


async def configure(
    name: str, *, allow_plan_change: bool | None = None,
    allow_downgrade_refund: bool | None = None, price_per_gb: str | None = None,
    parental_enabled: bool | None = None, tax_rate: str | None = None,
    currency: str | None = None, allow_self_renewal: bool | None = None,
    payment_instructions: str | None = None, payment_contact: str | None = None,
) -> Reseller:
    r = await get_reseller(name)
    # Column values, also the audit's detail keywords.
    fields: dict[str, Any] = {}
    if allow_plan_change is not None:
        fields["allow_plan_change"] = allow_plan_change
    if allow_downgrade_refund is not None:
        fields["allow_downgrade_refund"] = allow_downgrade_refund
    if currency is not None:
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise PortalError("invalid_currency", "currency is a 3-letter ISO code, e.g. USD")
        digits = money.minor_units(currency)  # unknown codes refused
        if digits != money.minor_units_or_2(r.currency) and (
                await Plan.filter(reseller_id=r.id).exists()
                or await Subscriber.filter(reseller_id=r.id).exists()):
            # Stored amounts are minor units of the old currency: 1500 cents would
            # silently become 1,500 pounds or 1.500 dinars.
            raise PortalError("currency_has_amounts", f"{r.name} already has plans or"
                              f" subscribers priced in {r.currency}; {currency} has {digits}"
                              " decimal places, so their amounts would change value")
        fields["currency"] = currency
    if price_per_gb is not None:
        fields["price_per_gb_cents"] = money.parse_amount(
            price_per_gb, allow_zero=True, currency=fields.get("currency", r.currency))
    if parental_enabled is not None:
        fields["parental_enabled"] = parental_enabled
    if tax_rate is not None:
        try:
            bp = Decimal(tax_rate) * 100
        except InvalidOperation:
            raise PortalError("invalid_tax_rate", f"not a percentage: {tax_rate!r}") from None
        if not bp.is_finite() or bp < 0 or bp > 10000 or bp != bp.to_integral_value():
            raise PortalError("invalid_tax_rate", "tax rate is a percentage 0-100, 2 decimals")
        fields["tax_rate_bp"] = int(bp)
    if allow_self_renewal is not None:
        fields["allow_self_renewal"] = allow_self_renewal
    for key, value, most in (("payment_instructions", payment_instructions, 1000),
                             ("payment_contact", payment_contact, 200)):
        if value is not None:
            if len(value) > most or not all(c.isprintable() or c == "\n" for c in value):
                raise PortalError(f"invalid_{key}", f"{key.replace('_', ' ')}: at most {most}"
                                  " printable characters")
            fields[key] = value.strip()

    async def write(tx: BaseDBAsyncClient) -> None:
        await Reseller.filter(id=r.id).using_db(tx).update(**fields)
        await journal.audit(tx, "operator:cli", "reseller.set", None, reseller=name,
                            **{k: v for k, v in fields.items()})
        if "parental_enabled" in fields:
            await journal.record(tx, None, "parental", reseller=name)

    await transaction(write)
    return await Reseller.get(id=r.id)
