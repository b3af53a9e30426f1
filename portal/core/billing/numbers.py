"""Invoice numbers: a gap-free sequence per reseller and year, e.g. INV-2026-000123."""

from __future__ import annotations

PREFIX = "INV"


def invoice_number(year: int, seq: int) -> str:
    if seq <= 0 or not 1900 < year < 10000:
        raise ValueError("invoice sequence starts at 1")
    return f"{PREFIX}-{year}-{seq:06d}"
