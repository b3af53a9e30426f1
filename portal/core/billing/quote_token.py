"""The signed plan-change quote: what the server offered, so a confirm cannot lie.

The quote endpoint prices a change at the server's clock and hands the client
`quote`, an HMAC-SHA256 token over (subscriber, from-plan, to-plan, amount, the
server's issue time). The change re-prices at the server's clock when it commits
and uses the quote only as a cap (`within_quote`): the charge is never above the
quoted charge and a refund never above the quoted refund. Nothing the client
states about time is used. The key is a parameter (the portal's signing key), so
the rule reads no configuration and any portal instance with the key verifies it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portal.errors import Conflict

# How long a signed quote caps a change.
QUOTE_TTL = timedelta(minutes=15)
# A quote "issued" further ahead than this of our clock was not made by a sane
# instance (instances share one key; their clocks may differ by a little).
CLOCK_SKEW = timedelta(seconds=5)
# Domain separation: the same key also signs login tokens.
_CONTEXT = b"ispedge.plan_quote.v1\x00"
MAX_TOKEN = 512


@dataclass(frozen=True)
class QuoteClaims:
    subscriber_id: int
    from_plan_id: int
    to_plan_id: int
    amount_cents: int  # > 0 charge, < 0 refund, 0 nothing: as quoted
    issued_at: int  # epoch seconds, the server's clock

    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.issued_at, UTC) + QUOTE_TTL


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _CONTEXT + payload, hashlib.sha256).digest()


def sign(key: bytes, claims: QuoteClaims) -> str:
    payload = json.dumps([claims.subscriber_id, claims.from_plan_id, claims.to_plan_id,
                          claims.amount_cents, claims.issued_at], separators=(",", ":"))
    raw = payload.encode()
    return f"{_b64(raw)}.{_b64(_mac(key, raw))}"


def _invalid() -> Conflict:
    return Conflict("quote_invalid",
                    "this price quote is not valid: please review the change again")


def verify(key: bytes, token: object, now: datetime) -> QuoteClaims:
    """The claims of a token this server signed, unexpired at `now`; else 409."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN or token.count(".") != 1:
        raise _invalid()
    body, mac = token.split(".")
    try:
        raw, given = _unb64(body), _unb64(mac)
    except (binascii.Error, ValueError):
        raise _invalid() from None
    if not hmac.compare_digest(given, _mac(key, raw)):
        raise _invalid()
    try:
        values = json.loads(raw)
    except ValueError:
        raise _invalid() from None
    if (not isinstance(values, list) or len(values) != 5
            or not all(type(v) is int for v in values)):
        raise _invalid()
    claims = QuoteClaims(*values)
    issued = datetime.fromtimestamp(claims.issued_at, UTC)
    if issued > now + CLOCK_SKEW or now >= claims.expires_at():
        raise Conflict("quote_expired", "this price quote has expired: please review it again")
    return claims


def within_quote(amount_cents: int, quoted_cents: int) -> bool:
    """May `amount_cents` (computed now) move under a quote of `quoted_cents`?

    A charge is at most the quoted charge and a refund at most the quoted refund;
    a quote of a charge allows no refund and the other way round.
    """
    if amount_cents > 0:
        return amount_cents <= max(quoted_cents, 0)
    if amount_cents < 0:
        return -amount_cents <= max(-quoted_cents, 0)
    return True
