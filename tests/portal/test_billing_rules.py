"""Billing rules as plain functions: proration, rounding, tax, quantities, numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from portal.core.billing.numbers import invoice_number
from portal.core.billing.proration import format_days, prorate, round_half_up
from portal.core.billing.quantity import parse_cents, parse_gb, parse_id
from portal.core.billing.tax import split_inclusive
from portal.errors import PortalError

START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=30)


@pytest.mark.parametrize("value, expected", [
    (Fraction(0), 0), (Fraction(1, 2), 1), (Fraction(3, 2), 2), (Fraction(5, 2), 3),
    (Fraction(-1, 2), -1), (Fraction(-3, 2), -2), (Fraction(49, 100), 0),
    (Fraction(51, 100), 1), (Fraction(-49, 100), 0), (Fraction(-51, 100), -1),
    (Fraction(10**15 + 1, 2), 10**15 // 2 + 1), (Fraction(7), 7), (Fraction(-7), -7),
])
def test_round_half_up(value: Fraction, expected: int):
    assert round_half_up(value) == expected


@pytest.mark.parametrize("old, new, at, expected", [
    (1500, 3000, START, 1500),                                   # whole cycle left
    (1500, 3000, START + timedelta(days=18), 600),               # 12 of 30 days
    (1500, 3000, START + timedelta(days=15), 750),               # half
    (3000, 1500, START + timedelta(days=18), -600),              # downgrade: refund due
    (1500, 3000, END - timedelta(seconds=1), 0),                 # 1 s left rounds to 0
    (1000, 1001, START + timedelta(days=15), 1),                 # 0.5 cent rounds up
    (1001, 1000, START + timedelta(days=15), -1),                # and a refund away from 0
    (1500, 1500, START + timedelta(days=3), 0),                  # same price
    (0, 2999, START + timedelta(days=20), 1000),                 # 2999/3 = 999.67 -> 1000
    (2999, 0, START + timedelta(days=20), -1000),
    (1500, 3000, START - timedelta(days=2), 1500),               # clock before cycle: whole
    (1500, 4000, START + timedelta(days=29, hours=12), 42),      # 2500/60 = 41.67 -> 42
])
def test_prorate(old: int, new: int, at: datetime, expected: int):
    assert prorate(old, new, START, END, at).amount_cents == expected


def test_prorate_rounds_once_on_the_exact_fraction():
    # 1/3 of the cycle left of a 1000 difference: 333.33 -> 333, not the sum of
    # daily roundings (10 x 33.33 -> 330) or a rounded day fraction.
    at = START + timedelta(days=20)
    p = prorate(0, 1000, START, END, at)
    assert p.remaining == Fraction(1, 3)
    assert p.amount_cents == 333
    # Microsecond precision: one microsecond more elapsed changes the exact fraction.
    q = prorate(0, 10**12, START, END, at + timedelta(microseconds=1))
    assert q.remaining < Fraction(1, 3)


def test_prorate_refuses_expired_and_empty_cycle():
    with pytest.raises(PortalError) as e:
        prorate(1500, 3000, START, END, END)
    assert e.value.code == "subscription_expired" and e.value.status == 403
    with pytest.raises(PortalError):
        prorate(1500, 3000, START, START, START)


@pytest.mark.parametrize("us, text", [
    (12 * 86_400_000_000, "12"), (30 * 86_400_000_000, "30"),
    (12 * 86_400_000_000 + 43_200_000_000, "12.5"), (1, "0.1"), (86_400_000_000 // 3, "0.3"),
])
def test_format_days(us: int, text: str):
    assert format_days(us) == text


def test_days_in_the_description():
    p = prorate(1500, 3000, START, END, START + timedelta(days=18))
    assert (p.remaining_days, p.cycle_days) == ("12", "30")


@pytest.mark.parametrize("total, bp, subtotal, tax", [
    (1500, 0, 1500, 0), (1500, 1100, 1351, 149), (1110, 1100, 1000, 110),
    (1, 1100, 1, 0), (11, 1000, 10, 1), (0, 1100, 0, 0), (10000, 10000, 5000, 5000),
    (999, 2000, 832, 167), (105, 500, 100, 5),
])
def test_tax_inclusive_split(total: int, bp: int, subtotal: int, tax: int):
    assert split_inclusive(total, bp) == (subtotal, tax)
    assert subtotal + tax == total


def test_tax_split_always_adds_up():
    for total in range(0, 5000, 7):
        for bp in (0, 500, 1100, 1500, 2000, 1750):
            sub, tax = split_inclusive(total, bp)
            assert sub + tax == total and 0 <= tax <= total


@pytest.mark.parametrize("value", [0, -1, 101, 10**9, 1.5, 10.0, "10", "ten", None, True,
                                   False, [], {}, float("nan")])
def test_parse_gb_refuses(value: object):
    with pytest.raises(PortalError) as e:
        parse_gb(value, 100)
    assert e.value.status == 400 and e.value.code == "invalid_gb"


@pytest.mark.parametrize("value", [1, 10, 100])
def test_parse_gb_accepts(value: int):
    assert parse_gb(value, 100) == value


@pytest.mark.parametrize("value", [0, -3, "3", 2.0, None, True, 2**31])
def test_parse_id_refuses(value: object):
    with pytest.raises(PortalError):
        parse_id(value)


@pytest.mark.parametrize("value", ["100", 1.5, None, True, 10**13])
def test_parse_cents_refuses(value: object):
    with pytest.raises(PortalError):
        parse_cents(value)


def test_parse_cents_accepts_refunds():
    assert parse_cents(-600) == -600 and parse_cents(0) == 0


def test_invoice_numbers():
    assert invoice_number(2026, 123) == "INV-2026-000123"
    assert invoice_number(2027, 1) == "INV-2027-000001"
    with pytest.raises(ValueError):
        invoice_number(2026, 0)
