"""Plan-change rules as plain functions: the signed quote, its cap, the daily limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.core.billing import change_limit, quote_token
from portal.core.billing.proration import prorate
from portal.core.billing.quote_token import QuoteClaims, sign, verify, within_quote
from portal.errors import Conflict

KEY = b"k" * 64
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CLAIMS = QuoteClaims(7, 1, 2, 595, int(NOW.timestamp()))


def test_a_signed_quote_verifies_to_its_claims():
    assert verify(KEY, sign(KEY, CLAIMS), NOW + timedelta(minutes=14)) == CLAIMS
    assert CLAIMS.expires_at() == NOW + timedelta(minutes=15)


@pytest.mark.parametrize("at, code", [
    (NOW + timedelta(minutes=15), "quote_expired"),
    (NOW + timedelta(days=1), "quote_expired"),
    (NOW - timedelta(seconds=6), "quote_expired"),  # issued "in the future"
])
def test_quotes_expire(at: datetime, code: str):
    with pytest.raises(Conflict) as exc:
        verify(KEY, sign(KEY, CLAIMS), at)
    assert exc.value.code == code and exc.value.status == 409


def _bad_tokens() -> list[object]:
    token = sign(KEY, CLAIMS)
    body, mac = token.split(".")
    other = sign(KEY, QuoteClaims(7, 1, 2, 1, CLAIMS.issued_at)).split(".")[0]
    return [
        sign(b"another key" * 4, CLAIMS),  # not ours
        f"{other}.{mac}",  # a cheaper amount, our signature of another payload
        f"{body}.{mac[:-2]}",  # a truncated signature
        f"{body}.{'A' * len(mac)}",
        token + ".x", "", ".", "a.b", "!!.??", None, 12, 1.5, ["x"], {"quote": token},
        token * 20,  # far too long
        sign(KEY, QuoteClaims(7, 1, 2, True, CLAIMS.issued_at)),  # a boolean is not an amount
    ]


@pytest.mark.parametrize("token", _bad_tokens())
def test_anything_else_is_an_invalid_quote(token: object):
    with pytest.raises(Conflict) as exc:
        verify(KEY, token, NOW)
    assert exc.value.code in ("quote_invalid", "quote_expired")


def test_a_quote_signed_with_a_payload_of_the_wrong_shape_is_invalid():
    import base64
    import hashlib
    import hmac

    raw = b'{"amount_cents": 1}'
    mac = hmac.new(KEY, quote_token._CONTEXT + raw, hashlib.sha256).digest()
    enc = [base64.urlsafe_b64encode(x).rstrip(b"=").decode() for x in (raw, mac)]
    with pytest.raises(Conflict) as exc:
        verify(KEY, ".".join(enc), NOW)
    assert exc.value.code == "quote_invalid"


@pytest.mark.parametrize("now_cents, quoted, ok", [
    (595, 595, True), (594, 595, True), (596, 595, False),  # charges: at most the quote
    (-300, -300, True), (-299, -300, True), (-301, -300, False),  # refunds: at most quoted
    (0, 595, True), (0, -300, True), (0, 0, True),
    (1, 0, False), (-1, 0, False),  # a free quote allows no money to move
    (5, -300, False), (-5, 595, False),  # the direction flipped (prices edited)
])
def test_within_quote(now_cents: int, quoted: int, ok: bool):
    assert within_quote(now_cents, quoted) is ok


START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=30)


@given(st.integers(1, 100_000), st.integers(1, 100_000),
       st.integers(0, 30 * 86_400 - 3600), st.integers(0, 900), st.integers(0, 900))
def test_round_trips_priced_at_commit_never_grow_the_balance(
        low: int, high: int, t: int, wait_up: int, wait_down: int):
    """Upgrade quoted at t and committed later; downgrade quoted after that and
    committed later still: what is refunded never exceeds what was charged."""
    low, high = min(low, high), max(low, high)
    at = START + timedelta(seconds=t)
    up_quote = prorate(low, high, START, END, at).amount_cents
    up = prorate(low, high, START, END, at + timedelta(seconds=wait_up)).amount_cents
    assert within_quote(up, up_quote)
    down_at = at + timedelta(seconds=wait_up)
    down_quote = prorate(high, low, START, END, down_at).amount_cents
    down = prorate(high, low, START, END, down_at + timedelta(seconds=wait_down)).amount_cents
    assert within_quote(down, down_quote)
    assert -down <= up


TZ = ZoneInfo("Europe/Berlin")


def test_the_limit_allows_up_to_per_day():
    for done in range(3):
        change_limit.check(done, 3, NOW, TZ)
    change_limit.check(50, 0, NOW, TZ)  # 0 turns the limit off


def test_the_limit_refuses_until_local_midnight():
    with pytest.raises(change_limit.PlanChangeLimit) as exc:
        change_limit.check(3, 3, NOW, TZ)  # 13:00 in Berlin: 11 h to midnight
    err = exc.value
    assert (err.status, err.code, err.extra["limit"]) == (429, "plan_change_limit", 3)
    assert err.extra["retry_after"] == 11 * 3600
    assert "3 plan changes" in err.message


@pytest.mark.parametrize("now, start, end", [
    # Berlin winter (UTC+1): 23:30 UTC on the 20th is 00:30 on the 21st.
    (datetime(2026, 11, 20, 23, 30, tzinfo=UTC), datetime(2026, 11, 20, 23, 0, tzinfo=UTC),
     datetime(2026, 11, 21, 23, 0, tzinfo=UTC)),
    # The spring-forward day is 23 hours long, the autumn one 25.
    (datetime(2026, 3, 29, 12, tzinfo=UTC), datetime(2026, 3, 28, 23, tzinfo=UTC),
     datetime(2026, 3, 29, 22, tzinfo=UTC)),
    (datetime(2026, 10, 25, 12, tzinfo=UTC), datetime(2026, 10, 24, 22, tzinfo=UTC),
     datetime(2026, 10, 25, 23, tzinfo=UTC)),
])
def test_day_bounds_follow_the_local_day(now: datetime, start: datetime, end: datetime):
    assert change_limit.day_bounds(now, TZ) == (start, end)


def test_retry_after_is_at_least_a_second():
    assert change_limit.seconds_until(NOW, NOW) == 1
    assert change_limit.seconds_until(NOW + timedelta(seconds=1.2), NOW) == 2
