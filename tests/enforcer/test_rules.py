"""The enforcer's plain rules: desired speed, where to send, idempotence, backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.speed.fup import Tier
from portal.speed.rules import (
    Desired,
    Facts,
    Outcome,
    Policy,
    Recorded,
    after_attempt,
    backoff_s,
    desired_state,
    is_new,
    radreply_needs_update,
    should_send,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
GB = 10**9
TIERS = (
    Tier("daily", 1, 20 * GB, 5000, 2000),
    Tier("monthly", 1, 200 * GB, 10000, 5000),
    Tier("monthly", 2, 300 * GB, 4000, 2000),
)
POLICY = Policy(suspended_down_kbps=128, suspended_up_kbps=64)


def facts(**kw: object) -> Facts:
    base: dict[str, object] = dict(username="alice", status="active",
                                   expires_at=NOW + timedelta(days=3), plan_down_kbps=50000,
                                   plan_up_kbps=20000, tiers=TIERS)
    base.update(kw)
    return Facts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("daily", "monthly", "bonus", "expected"), [
    (0, 0, 0, Desired("rate", 50000, 20000, "plan")),
    (20 * GB - 1, 0, 0, Desired("rate", 50000, 20000, "plan")),
    (20 * GB, 0, 0, Desired("rate", 5000, 2000, "fup:daily:1")),
    (0, 200 * GB, 0, Desired("rate", 10000, 5000, "fup:monthly:1")),
    (0, 310 * GB, 0, Desired("rate", 4000, 2000, "fup:monthly:2")),
    # the slower of daily and monthly applies
    (25 * GB, 210 * GB, 0, Desired("rate", 5000, 2000, "fup:daily:1")),
    (25 * GB, 310 * GB, 0, Desired("rate", 4000, 2000, "fup:monthly:2")),
    # bought data is used before the monthly tiers
    (0, 210 * GB, 11 * GB, Desired("rate", 50000, 20000, "plan")),
    (0, 210 * GB, 10 * GB, Desired("rate", 10000, 5000, "fup:monthly:1")),
    (0, 310 * GB, 11 * GB, Desired("rate", 10000, 5000, "fup:monthly:1")),
    # ... but not before the daily ones
    (21 * GB, 21 * GB, 100 * GB, Desired("rate", 5000, 2000, "fup:daily:1")),
])
def test_plan_and_fup_tiers(daily: int, monthly: int, bonus: int, expected: Desired) -> None:
    got = desired_state(facts(daily_bytes=daily, monthly_bytes=monthly, bonus_bytes=bonus),
                        POLICY, NOW)
    assert got == expected


def test_tier_never_faster_than_plan() -> None:
    slow_plan = facts(plan_down_kbps=3000, plan_up_kbps=1000, monthly_bytes=250 * GB)
    assert desired_state(slow_plan, POLICY, NOW) == Desired("rate", 3000, 1000, "fup:monthly:1")


def test_no_tiers_means_plan_speed_at_any_usage() -> None:
    f = facts(tiers=(), daily_bytes=10**15, monthly_bytes=10**15)
    assert desired_state(f, POLICY, NOW) == Desired("rate", 50000, 20000, "plan")


@pytest.mark.parametrize("action", ["suspend", "disconnect"])
def test_expired_gets_suspended_speed_or_disconnect(action: str) -> None:
    policy = Policy(128, 64, action)
    want = "rate" if action == "suspend" else "disconnect"
    assert desired_state(facts(expires_at=NOW), policy, NOW) == Desired(want, 128, 64, "expired")
    assert desired_state(facts(expires_at=NOW + timedelta(seconds=1)), policy, NOW).reason == \
        "plan"


@pytest.mark.parametrize("action", ["suspend", "disconnect"])
def test_disabled_is_treated_like_expired(action: str) -> None:
    got = desired_state(facts(status="disabled"), Policy(128, 64, action), NOW)
    assert got.reason == "disabled" and (got.down_kbps, got.up_kbps) == (128, 64)
    assert got.action == ("rate" if action == "suspend" else "disconnect")


def test_disabled_wins_over_fup_and_expiry() -> None:
    f = facts(status="disabled", expires_at=NOW - timedelta(days=1), daily_bytes=99 * GB)
    assert desired_state(f, POLICY, NOW).reason == "disabled"


@pytest.mark.parametrize("kwargs", [
    {"expired_action": "drop"}, {"suspended_down_kbps": 0}, {"suspended_up_kbps": -1},
    {"retry_base_s": 0}, {"retry_base_s": 10, "retry_max_s": 5},
])
def test_bad_policy_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Policy(**kwargs)  # type: ignore[arg-type]


D = Desired("rate", 10000, 5000, "fup:monthly:1")


def rec(state: str, desired: Desired = D, retry: float | None = None, session: str = "s1"
        ) -> Recorded:
    return Recorded("nas:10.0.0.1", session, "100.64.0.1", desired, state, 1, retry)


@pytest.mark.parametrize(("recorded", "now", "send"), [
    (None, 0, True),  # never sent
    (rec("applied"), 0, False),  # idempotent: same wish twice sends nothing
    (rec("pending"), 0, True),  # recorded, never confirmed
    (rec("retrying", retry=100.0), 99.9, False),  # backing off
    (rec("retrying", retry=100.0), 100.0, True),  # due
    (rec("failed"), 10**9, False),  # final (503): never retried
    (rec("applied", Desired("rate", 50000, 20000, "plan")), 0, True),  # new wish
    (rec("failed", session="s0"), 0, True),  # a new session starts over
    (rec("unenforced"), 0, False),
])
def test_should_send(recorded: Recorded | None, now: float, send: bool) -> None:
    assert should_send(recorded, "nas:10.0.0.1", "s1", "100.64.0.1", D, now) is send


def test_nothing_is_sent_without_a_target() -> None:
    assert not should_send(None, "none", "s1", "", D, 0)


def test_is_new_compares_target_session_address_and_wish() -> None:
    r = rec("applied")
    assert not is_new(r, "nas:10.0.0.1", "s1", "100.64.0.1", D)
    assert is_new(r, "shaper", "s1", "100.64.0.1", D)
    assert is_new(r, "nas:10.0.0.1", "s1", "100.64.0.2", D)
    assert is_new(r, "nas:10.0.0.1", "s1", "100.64.0.1", Desired("disconnect", 10000, 5000,
                                                                 "fup:monthly:1"))


def test_backoff_doubles_and_is_capped() -> None:
    p = Policy(retry_base_s=1, retry_max_s=30)
    assert [backoff_s(n, p) for n in range(0, 8)] == [0, 1, 2, 4, 8, 16, 30, 30]
    assert backoff_s(10_000, p) == 30


def test_after_attempt_success_failure_and_final() -> None:
    p = Policy(retry_base_s=1, retry_max_s=60)
    assert after_attempt(3, Outcome(True), p, 100.0).state == "applied"
    assert after_attempt(3, Outcome(True), p, 100.0).attempts == 0
    n = after_attempt(0, Outcome(False, "no answer"), p, 100.0)
    assert (n.state, n.attempts, n.next_retry_at, n.last_error) == ("retrying", 1, 101.0,
                                                                     "no answer")
    n = after_attempt(2, Outcome(False, "no answer"), p, 100.0)
    assert (n.attempts, n.next_retry_at) == (3, 104.0)
    n = after_attempt(0, Outcome(False, "NAK 503: session gone", retryable=False), p, 100.0)
    assert (n.state, n.next_retry_at) == ("failed", None)


def test_radreply_comparison_ignores_order() -> None:
    a = [("Mikrotik-Rate-Limit", ":=", "5000k/10000k")]
    assert not radreply_needs_update(a, list(a))
    assert radreply_needs_update([], a)
    assert radreply_needs_update([("Mikrotik-Rate-Limit", ":=", "1k/1k")], a)
    two = [("A", "+=", "1"), ("B", "+=", "2")]
    assert not radreply_needs_update(list(reversed(two)), two)
