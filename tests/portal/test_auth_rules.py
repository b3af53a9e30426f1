"""Plain rules of the login lockout (address-wide limit, per-account throttle) and the
signing key ring, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.config import ConfigError
from portal.core.auth import keys, tokens
from portal.core.auth.lockout import Failures, Policy, refused_until, retry_after_seconds
from portal.errors import Unauthorized

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
POLICY = Policy()


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


def test_nothing_recorded_is_never_refused():
    assert refused_until(Failures(), NOW) is None


def test_the_tiers_still_apply_to_the_address_and_username():
    assert refused_until(Failures(pair=[ago(minutes=i) for i in range(5)]), NOW) == \
        NOW + timedelta(minutes=15)
    assert refused_until(Failures(pair=[ago(minutes=i) for i in range(4)]), NOW) is None


def test_an_address_at_its_limit_waits_until_the_oldest_counted_failure_leaves_the_window():
    nth = ago(minutes=10)
    assert refused_until(Failures(address_nth=nth), NOW) == nth + timedelta(minutes=15)
    assert refused_until(Failures(address_nth=ago(minutes=16)), NOW) is None


def test_an_account_under_attack_slows_only_addresses_that_failed_for_it():
    attacked = ago(minutes=1)
    # A clean address (the real subscriber at home) is never slowed: 0 s, not 30.
    assert refused_until(Failures(account_nth=attacked), NOW) is None
    dirty = Failures(pair=[ago(minutes=2)], account_nth=attacked)
    assert refused_until(dirty, NOW) == ago(minutes=2) + timedelta(minutes=15)
    # Once its own slowdown has passed, a failed address may try again.
    assert refused_until(Failures(pair=[ago(minutes=20)], account_nth=attacked), NOW) is None


def test_an_account_not_under_attack_does_not_slow_a_failed_address():
    assert refused_until(Failures(pair=[ago(minutes=1)]), NOW) is None


def test_the_latest_rule_wins():
    f = Failures(pair=[ago(minutes=i) for i in range(5)], address_nth=ago(minutes=14),
                 account_nth=ago(minutes=1))
    assert refused_until(f, NOW) == NOW + timedelta(minutes=15)


def test_configured_limits():
    policy = Policy(address_max_failures=3, account_slowdown=timedelta(seconds=30))
    assert refused_until(Failures(pair=[ago(seconds=10)], account_nth=NOW), NOW, policy) == \
        NOW + timedelta(seconds=20)


@pytest.mark.parametrize(("seconds", "expected"), [(0.2, 1), (59.5, 60), (900, 901), (-3, 1)])
def test_retry_after_is_whole_seconds_and_at_least_one(seconds: float, expected: int):
    assert retry_after_seconds(NOW + timedelta(seconds=seconds), NOW) == expected


def test_key_file_rotation_keeps_previous_keys_and_signs_with_the_newest(tmp_path):
    path = tmp_path / "signing.keys"
    keys.ensure_file(path)
    ring = keys.KeyRing.load(path)
    token, _ = tokens.issue(ring, "alice", 7, datetime.now(UTC))
    new_kid = keys.rotate(path, keep=3)
    ring2 = keys.KeyRing.load(path)
    assert ring2.current_kid == new_kid != ring.current_kid
    assert tokens.decode(ring2, token, "customer").username == "alice"
    keys.rotate(path, keep=0)
    with pytest.raises(Unauthorized):
        tokens.decode(keys.KeyRing.load(path), token, "customer")


def test_a_legacy_jwt_key_becomes_the_legacy_kid(tmp_path):
    (tmp_path / "jwt.key").write_text("a" * 64)
    keys.ensure_file(tmp_path / "signing.keys", legacy=tmp_path / "jwt.key")
    ring = keys.KeyRing.load(tmp_path / "signing.keys")
    assert ring.current_kid == keys.LEGACY_KID and ring.current == b"a" * 64


def test_a_broken_key_file_is_a_config_error(tmp_path):
    (tmp_path / "k").write_text("short-kid tooshort\n")
    with pytest.raises(ConfigError, match="32"):
        keys.KeyRing.load(tmp_path / "k")
