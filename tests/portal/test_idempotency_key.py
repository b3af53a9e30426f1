"""The one rule for a valid Idempotency-Key (subscriber purchases and console actions)."""

from __future__ import annotations

import pytest

from portal.core import console
from portal.core.billing import idempotency
from portal.errors import PortalError


def test_a_missing_header_means_no_key() -> None:
    assert idempotency.check_key(None) is None
    assert idempotency.claim_from(None, "/customer/api/data/buy", {"gb": 1}) is None


def test_a_key_is_trimmed_and_claimed_with_the_request_hash() -> None:
    assert idempotency.check_key("  abc-1  ") == "abc-1"
    claim = idempotency.claim_from(" abc-1 ", "/p", {"gb": 1})
    assert claim == idempotency.Claim("abc-1", idempotency.request_hash("/p", {"gb": 1}))


@pytest.mark.parametrize("bad", ["", "   ", "x" * (idempotency.MAX_KEY + 1), "a\x00b", "a\nb"])
def test_bad_keys_are_refused_by_both_callers(bad: str) -> None:
    for check in (idempotency.check_key, console.check_key,
                  lambda h: idempotency.claim_from(h, "/p", {})):
        with pytest.raises(PortalError) as err:
            check(bad)
        assert err.value.code == "invalid_idempotency_key"
