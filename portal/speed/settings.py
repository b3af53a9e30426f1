"""The speed layer's settings, read from the config in one place.

What a subscriber's effective speed depends on besides the database: the
suspended rate and expiry action (the [enforcer] section), the NAS vendor's
reply format ([radius]), the operator's time zone and the billing cycle. Every
process sets them once at start (`configure`); a process that did not (a test,
a script) gets them from the config found the usual way, on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.config import Config, ConfigError, load_config
from portal.speed.rules import Policy


@dataclass(frozen=True)
class SpeedSettings:
    policy: Policy
    reply_profile: str = "mikrotik"
    timezone: str = "UTC"
    cycle: str = "renewal"

    @classmethod
    def from_config(cls, config: Config) -> SpeedSettings:
        def get(key: str, default: object) -> object:
            return config.get("enforcer", key, default)

        try:
            policy = Policy(int(str(get("suspended_down_kbps", 256))),
                            int(str(get("suspended_up_kbps", 256))),
                            str(get("expired_action", "suspend")),
                            float(str(get("retry_base_s", 1.0))),
                            float(str(get("retry_max_s", 60.0))))
        except ValueError as exc:
            raise ConfigError(f"[enforcer]: {exc}") from exc
        return cls(policy=policy,
                   reply_profile=str(config.get("radius", "reply_profile", "mikrotik")),
                   timezone=config.timezone,
                   cycle=str(config.get("billing", "cycle", "renewal")))


_current: SpeedSettings | None = None


def configure(config: Config) -> SpeedSettings:
    global _current
    _current = SpeedSettings.from_config(config)
    return _current


def current() -> SpeedSettings:
    return _current if _current is not None else configure(load_config())
