"""Plain values the CoA mechanism takes and returns.

Callers build these from their own data (a `nas` row, an open radacct row,
a plan's speed); nothing here knows where they came from.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

COA_PORT = 3799


@dataclass(frozen=True)
class Nas:
    """A NAS that accepts RFC 5176 requests."""

    address: str
    secret: str
    coa_port: int = COA_PORT
    profile: str = "mikrotik"

    def __post_init__(self) -> None:
        # The client matches answers by source address, so it must be an IP
        # literal (no DNS lookups on the hot path, no ambiguity).
        ipaddress.ip_address(self.address)
        if not self.secret:
            raise ValueError("NAS secret must not be empty")
        if not 0 < self.coa_port < 65536:
            raise ValueError(f"bad CoA port {self.coa_port}")


@dataclass(frozen=True)
class SessionRef:
    """One subscriber session on a NAS, as an open radacct row names it."""

    username: str
    acct_session_id: str
    framed_ip: str | None = None
    nas_ip: str | None = None


@dataclass(frozen=True)
class Burst:
    """MikroTik-style burst: up to *_kbps while the average stays below
    threshold_*_kbps, averaged over `seconds`."""

    down_kbps: int
    up_kbps: int
    threshold_down_kbps: int
    threshold_up_kbps: int
    seconds: int

    def __post_init__(self) -> None:
        for name in ("down_kbps", "up_kbps", "threshold_down_kbps", "threshold_up_kbps", "seconds"):
            _positive_int(name, getattr(self, name))


@dataclass(frozen=True)
class Rate:
    """A subscriber's speed: download and upload from the subscriber's view."""

    down_kbps: int
    up_kbps: int
    burst: Burst | None = None

    def __post_init__(self) -> None:
        _positive_int("down_kbps", self.down_kbps)
        _positive_int("up_kbps", self.up_kbps)
        if self.burst is not None and (
            self.burst.down_kbps < self.down_kbps or self.burst.up_kbps < self.up_kbps
        ):
            raise ValueError("burst rate must not be below the rate")


def _positive_int(name: str, value: object) -> None:
    # bool is an int subclass; True kbit/s is a bug, not a speed.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class CoaResult:
    """What became of one request.

    ok: the NAS ACKed. code: the answer's RADIUS code (None without an
    answer). error_cause: the NAK's Error-Cause. retryable: trying the same
    request later may succeed (no answer, NAS busy); a NAK for an unknown
    session (503) is final.
    """

    ok: bool
    code: int | None
    error_cause: int | None
    message: str
    retryable: bool
    rtt_ms: float

    @property
    def session_gone(self) -> bool:
        return self.error_cause == SESSION_CONTEXT_NOT_FOUND


SESSION_CONTEXT_NOT_FOUND = 503
