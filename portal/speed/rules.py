"""The enforcer's rules as plain functions: what a subscriber should get, and
whether (and when) to send it.

No database, no network: facts in, decisions out. Unit tested in
tests/enforcer/test_rules.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from portal.speed.fup import Tier, fup_state

EXPIRED_ACTIONS = ("suspend", "disconnect")


@dataclass(frozen=True)
class Policy:
    """The operator's choices ([enforcer] in the config)."""

    suspended_down_kbps: int = 256
    suspended_up_kbps: int = 256
    expired_action: str = "suspend"  # or "disconnect"
    retry_base_s: float = 1.0
    retry_max_s: float = 60.0

    def __post_init__(self) -> None:
        if self.expired_action not in EXPIRED_ACTIONS:
            raise ValueError(f"enforcer.expired_action must be suspend or disconnect, "
                             f"not {self.expired_action!r}")
        if self.suspended_down_kbps <= 0 or self.suspended_up_kbps <= 0:
            raise ValueError("enforcer.suspended_down_kbps/suspended_up_kbps must be positive")
        if self.retry_base_s <= 0 or self.retry_max_s < self.retry_base_s:
            raise ValueError("enforcer.retry_base_s > 0 and retry_max_s >= retry_base_s")


@dataclass(frozen=True)
class Facts:
    """Everything the rules need to know about one subscriber, read in one pass."""

    username: str
    status: str  # active | disabled
    expires_at: datetime
    plan_down_kbps: int
    plan_up_kbps: int
    tiers: Sequence[Tier] = ()
    daily_bytes: int = 0  # today (local day), download + upload
    monthly_bytes: int = 0  # this billing cycle, download + upload
    bonus_bytes: int = 0  # data bought this cycle


@dataclass(frozen=True)
class Desired:
    """What the network should do for one subscriber.

    rate is also what radreply must say (a reconnect gets it), even when the
    action is disconnect: a suspended subscriber who reconnects is suspended.
    """

    action: str  # "rate" | "disconnect"
    down_kbps: int
    up_kbps: int
    reason: str  # "plan" | "fup:daily:1" | "fup:monthly:2" | "expired" | "disabled"


def desired_state(facts: Facts, policy: Policy, now: datetime) -> Desired:
    suspended = (policy.suspended_down_kbps, policy.suspended_up_kbps)
    if facts.status != "active":
        # Disabled: RADIUS already rejects new logins (radcheck Auth-Type Reject);
        # the live session is treated like an expired one.
        return _suspend(policy, *suspended, "disabled")
    if now >= facts.expires_at:
        return _suspend(policy, *suspended, "expired")
    fup = fup_state(facts.plan_down_kbps, facts.plan_up_kbps, facts.tiers, facts.daily_bytes,
                    facts.monthly_bytes, facts.bonus_bytes)
    reason = f"fup:{fup.period}:{fup.tier}" if fup.tier else "plan"
    return Desired("rate", fup.down_kbps, fup.up_kbps, reason)


def _suspend(policy: Policy, down: int, up: int, reason: str) -> Desired:
    action = "disconnect" if policy.expired_action == "disconnect" else "rate"
    return Desired(action, down, up, reason)


# --- where and whether to send -------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """The enforcement_state row as far as the decision goes."""

    target: str
    acct_session_id: str
    address: str
    desired: Desired
    state: str  # pending | applied | retrying | failed | unenforced
    attempts: int = 0
    next_retry_at: float | None = None


def is_new(recorded: Recorded | None, target: str, session: str, address: str,
           desired: Desired) -> bool:
    """A different wish (or session, or place) than the one recorded: start over."""
    return recorded is None or (recorded.target, recorded.acct_session_id, recorded.address,
                                recorded.desired) != (target, session, address, desired)


def should_send(recorded: Recorded | None, target: str, session: str, address: str,
                desired: Desired, now: float) -> bool:
    """Idempotence and retries: send a new wish at once, a failed one when due, nothing else."""
    if target == "none":
        return False
    if is_new(recorded, target, session, address, desired):
        return True
    assert recorded is not None
    if recorded.state == "pending":
        return True  # recorded but never confirmed (e.g. a crash mid-send)
    if recorded.state == "retrying":
        return recorded.next_retry_at is None or now >= recorded.next_retry_at
    return False  # applied, failed for good, or unenforced


def backoff_s(attempts: int, policy: Policy) -> float:
    """Delay before the next try after `attempts` failures: 1, 2, 4 ... capped."""
    if attempts <= 0:
        return 0.0
    return float(min(policy.retry_max_s, policy.retry_base_s * 2 ** min(attempts - 1, 30)))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str = ""
    retryable: bool = True


@dataclass(frozen=True)
class Next:
    state: str
    attempts: int
    next_retry_at: float | None
    last_error: str


def after_attempt(attempts_before: int, outcome: Outcome, policy: Policy, now: float) -> Next:
    if outcome.ok:
        return Next("applied", 0, None, "")
    attempts = attempts_before + 1
    if not outcome.retryable:
        return Next("failed", attempts, None, outcome.error)
    return Next("retrying", attempts, now + backoff_s(attempts, policy), outcome.error)


def radreply_needs_update(current: Sequence[tuple[str, str, str]],
                          wanted: Sequence[tuple[str, str, str]]) -> bool:
    """radreply rows (attribute, op, value) for the rate differ from what must be there."""
    return sorted(current) != sorted(wanted)
