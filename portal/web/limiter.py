"""The global API limiter: a DoS guard on every /customer/api and /operator/api route.

Three counters, each a `limits` rate in its notation ("1200/minute", or several
joined with ";"), from [portal]:
  - rate_limit_per_address: every API request, by client address (X-Forwarded-For
    believed only from trusted proxies), checked before the handler runs;
  - rate_limit_per_subscriber: every authenticated request, by the username in the
    token (customer or operator), checked once the token's signature is verified
    and before any database query;
  - rate_limit_login_per_address: the login routes, by client address: a password
    guess costs a database round trip, and a stolen password list is tried fast.
Over a limit: 429 with Retry-After and the standard error body.

The counters live in this process's memory (fixed windows): each portal instance
counts on its own. That is enough for a DoS guard (behind a
load balancer with N instances an address gets up to N times the rate); the
lockout, which must not be raced, counts in the database instead.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many

from portal.config import Config, ConfigError
from portal.errors import TooManyRequests

LOGIN_PATHS = frozenset({"/customer/api/login", "/operator/api/login"})
API_PREFIXES = ("/customer/api/", "/operator/api/")


def parse_rates(key: str, value: object) -> list[RateLimitItem]:
    """A config value in limits' notation; an empty string means no limit of this kind."""
    if not isinstance(value, str):
        raise ConfigError(f"[portal] {key}: expected a rate such as \"600/minute\", got {value!r}")
    if not value.strip():
        return []
    try:
        return list(parse_many(value))
    except ValueError as exc:
        raise ConfigError(f"[portal] {key}: {value!r} is not a rate such as \"600/minute\""
                          ) from exc


@dataclass
class ApiLimiter:
    per_address: list[RateLimitItem]
    per_subscriber: list[RateLimitItem]
    login_per_address: list[RateLimitItem]
    enabled: bool = True

    def __post_init__(self) -> None:
        self._windows = FixedWindows()
        # Each rate's name, amount and window length, worked out once: a request pays
        # two hits, and formatting str(rate) and get_expiry() at each was most of one.
        self._address = [Window.of(r) for r in self.per_address]
        self._subscriber = [Window.of(r) for r in self.per_subscriber]
        self._login = [Window.of(r) for r in self.login_per_address]

    @classmethod
    def from_config(cls, config: Config) -> ApiLimiter:
        get = config.get
        enabled = get("portal", "rate_limit", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"[portal] rate_limit: expected true or false, got {enabled!r}")
        return cls(
            parse_rates("rate_limit_per_address", get("portal", "rate_limit_per_address", "")),
            parse_rates("rate_limit_per_subscriber",
                        get("portal", "rate_limit_per_subscriber", "")),
            parse_rates("rate_limit_login_per_address",
                        get("portal", "rate_limit_login_per_address", "")),
            enabled)

    def hit_address(self, path: str, address: str) -> None:
        if not self.enabled:
            return
        self._hit(self._address, "address", address)
        if path in LOGIN_PATHS:
            self._hit(self._login, "login", address)

    def hit_subscriber(self, kind: str, username: str) -> None:
        """kind keeps a customer and an operator of the same name apart."""
        if self.enabled:
            self._hit(self._subscriber, kind, username)

    def _hit(self, windows: list[Window], kind: str, key: str) -> None:
        for window in windows:
            retry_after = self._windows.count(window, kind, key)
            if retry_after:
                raise TooManyRequests(
                    "rate_limited", f"too many requests, please try again in {retry_after} s",
                    retry_after=retry_after)


@dataclass(frozen=True)
class Window:
    """A rate as the counters use it: its name (the counter's key), hits allowed per
    window, and the window's length in seconds."""

    name: str
    amount: int
    seconds: float

    @classmethod
    def of(cls, rate: RateLimitItem) -> Window:
        return cls(str(rate), rate.amount, float(rate.get_expiry()))


class FixedWindows:
    """Fixed-window counters in a dict: `limits` parses the rates, this counts them.

    Why not limits' own FixedWindowRateLimiter + MemoryStorage: measured 8.9 us per hit
    against 0.4 us here (timeit, this VM), and every authenticated request makes two
    hits, ~10 % of the portal's whole CPU cost of a `live` poll (bench/portal_bench.py,
    ~170 us each). The dict is swept of ended windows as it grows, so a flood from many
    addresses costs memory only for the current window.
    """

    SWEEP_AT = 50_000

    def __init__(self) -> None:
        # (rate, kind, key) -> [window end (monotonic s), hits in the window]
        self._counts: dict[tuple[str, str, str], list[float]] = {}
        self._sweep_at = self.SWEEP_AT

    def hit(self, rate: RateLimitItem, kind: str, key: str) -> int:
        """Count a hit; 0 if within the rate, else the seconds until the window ends."""
        return self.count(Window.of(rate), kind, key)

    def count(self, window: Window, kind: str, key: str) -> int:
        """`hit` for a rate already worked out (the request path)."""
        now = time.monotonic()
        slot = (window.name, kind, key)
        entry = self._counts.get(slot)
        if entry is None or now >= entry[0]:
            if len(self._counts) >= self._sweep_at:
                self._sweep(now)
            self._counts[slot] = [now + window.seconds, 1]
            return 0
        entry[1] += 1
        if entry[1] <= window.amount:
            return 0
        return max(1, math.ceil(entry[0] - now))

    def _sweep(self, now: float) -> None:
        self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
        # Still full of live windows: sweep again only once it has doubled.
        self._sweep_at = max(self.SWEEP_AT, 2 * len(self._counts))
