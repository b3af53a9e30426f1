"""The [enforcer] section of the config, checked once at start."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from portal.config import Config, ConfigError
from portal.enforcer.ownership import Network, parse_networks
from portal.speed.rules import Policy
from portal.speed.settings import SpeedSettings


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"enforcer.shaper: expected true or false, got {value!r}")


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


@dataclass(frozen=True)
class Settings:
    policy: Policy
    shaper: bool = False
    down_interface: str = ""
    up_interface: str = ""
    netns: str | None = None
    reply_profile: str = "mikrotik"
    poll_s: float = 0.2
    listen_poll_s: float = 2.0  # the fallback poll while PostgreSQL's NOTIFY wakes it
    reconcile_s: float = 60.0
    ingest_s: float = 60.0
    ingest_coalesce_s: float = 0.05  # live ingest window (portal.usage.coalesce); 0: off
    sample_s: float = 1.0
    coa_timeout_s: float = 1.0
    coa_retries: int = 2
    timezone: str = "UTC"
    cycle: str = "renewal"
    reconcile_slice: int = 1000  # subscribers per slice of the full reconcile, at most
    reconcile_slice_s: float = 0.1  # a slice's target duration (its size adapts)
    batch: int = 1000  # journal / accounting rows read per poll (a backlog takes several)
    box: str = field(default_factory=socket.gethostname)  # [general] box
    shaped_networks: tuple[Network, ...] = ()
    heartbeat_s: float = 5.0
    metrics_address: str = "127.0.0.1"  # Prometheus /metrics (portal/enforcer/metrics.py)
    metrics_port: int = 9155  # 0: off
    db_pool_max: int = 8  # PostgreSQL connections of its pool (+1 LISTEN): README "Connections"

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        def get(key: str, default: Any) -> Any:
            return config.get("enforcer", key, default)

        speed = SpeedSettings.from_config(config)
        try:
            return cls(
                policy=speed.policy, shaper=_bool(get("shaper", False)),
                down_interface=str(get("down_interface", "")),
                up_interface=str(get("up_interface", "")),
                netns=str(get("netns", "")) or None,
                reply_profile=speed.reply_profile,
                poll_s=int(get("poll_ms", 200)) / 1000,
                listen_poll_s=int(get("listen_poll_ms", 2000)) / 1000,
                reconcile_s=float(get("reconcile_s", 60)),
                ingest_s=float(get("ingest_s", 60)),
                ingest_coalesce_s=int(get("ingest_coalesce_ms", 50)) / 1000,
                sample_s=float(get("sample_s", 1.0)),
                coa_timeout_s=float(get("coa_timeout_s", 1.0)),
                coa_retries=int(get("coa_retries", 2)), timezone=speed.timezone,
                cycle=speed.cycle, batch=max(1, int(get("journal_batch", 1000))), box=config.box,
                shaped_networks=parse_networks(_list(get("shaped_networks", []))),
                heartbeat_s=float(get("heartbeat_s", 5.0)),
                metrics_address=str(get("metrics_address", "127.0.0.1")),
                metrics_port=int(get("metrics_port", 9155)),
                db_pool_max=int(get("db_pool_max", 8)),
                reconcile_slice=max(1, int(get("reconcile_slice", 1000))),
                reconcile_slice_s=float(get("reconcile_slice_ms", 100)) / 1000,
            )
        except ValueError as exc:
            raise ConfigError(f"[enforcer]: {exc}") from exc

    def __post_init__(self) -> None:
        if not 1 <= self.db_pool_max <= 1000:
            raise ConfigError(f"[enforcer] db_pool_max: expected 1-1000, got {self.db_pool_max}")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"[enforcer] metrics_port: expected 0-65535, got "
                              f"{self.metrics_port}")
