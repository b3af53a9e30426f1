"""Validating what a subscriber asks for: whole GB, plan ids, previewed amounts."""

from __future__ import annotations

from typing import Any

from portal.errors import PortalError


def parse_gb(value: Any, max_gb: int) -> int:
    """A JSON integer 1..max_gb. Strings, floats (even 10.0), booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PortalError("invalid_gb", f"gb must be a whole number from 1 to {max_gb}")
    if not 1 <= value <= max_gb:
        raise PortalError("invalid_gb", f"gb must be a whole number from 1 to {max_gb}")
    return value


def parse_id(value: Any, name: str = "plan_id") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise PortalError(f"invalid_{name}", f"{name} must be a positive whole number")
    return value


def parse_cents(value: Any, name: str = "amount_cents") -> int:
    """A previewed amount in minor units: an integer, may be negative (a refund)."""
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 10**12:
        raise PortalError(f"invalid_{name}", f"{name} must be a whole number of minor units")
    return value
