"""Resolver settings: plain values the CLI fills from the TOML config."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from dns_filter import cpuslice

BLOCK_MODES = ("nxdomain", "null", "page")
CPU_SCHEDULING = ("auto", "batch", "normal")


@dataclass
class DnsSettings:
    listen_address: str = "0.0.0.0"  # "::" listens dual-stack
    listen_port: int = 53
    upstreams: list[str] = field(
        default_factory=lambda: ["9.9.9.9:53", "1.1.1.1:53"]
    )  # "host:port", "[v6]:port"
    upstream_timeout_s: float = 1.5
    # Sources inside these networks are served; anything else is REFUSED.
    served_networks: list[str] = field(
        default_factory=lambda: ["10.0.0.0/8", "100.64.0.0/10", "192.168.0.0/16"]
    )
    default_categories: list[str] = field(default_factory=list)  # served address with no subscriber
    # A category switched on also switches these on (DoH bypass defeats adult filtering).
    implied_categories: dict[str, list[str]] = field(default_factory=lambda: {"adult": ["doh"]})
    block_mode: str = "nxdomain"  # nxdomain | null (0.0.0.0 / ::) | page (blocked_page_ipv4/ipv6)
    blocked_page_ipv4: str = ""
    blocked_page_ipv6: str = ""
    blocked_ttl: int = 60
    # The walled garden of expired (or disabled) subscribers, whose policy rows carry the
    # pseudo-category "expired": every name but expired_allow (and its subdomains: the
    # portal's own names) answers with these addresses, the portal's branded "expired"
    # page. Neither address set: the pseudo-category is ignored (no walled garden).
    expired_page_ipv4: str = ""
    expired_page_ipv6: str = ""
    expired_allow: list[str] = field(default_factory=list)
    cache_min_ttl: int = 0
    cache_max_ttl: int = 86400
    cache_stale_s: int = 86400  # how long past expiry an answer may be served when upstreams fail
    cache_max_entries: int = 200_000
    rate_limit_qps: float = 200.0  # per source address; 0 disables
    rate_limit_burst: int = 400
    # TCP (dns_filter.tcp_guard), per worker. The total cap is lowered at start to
    # fit the descriptor limit (whose soft value is raised to the hard one).
    tcp_max_connections: int = 4096  # at the cap the longest-idle connection is evicted
    tcp_max_connections_per_source: int = 32  # beyond it a source's newest is refused
    tcp_idle_timeout_s: float = 10.0  # between queries
    tcp_query_timeout_s: float = 3.0  # first byte of a query to its last, not reset per byte
    tcp_max_lifetime_s: float = 120.0  # a connection is closed this long after it opened
    workers: int | str = 1  # an int or "auto" (one per CPU)
    # "batch": a worker woken by a packet does not preempt the task running on its
    # CPU (SCHED_BATCH), so workers sharing a core take turns in whole bursts
    # instead of ping-ponging per packet; "normal": the default Linux policy, whose
    # wake-up preemption gets a woken worker the CPU ahead of the box's other
    # daemons; "auto": batch with several workers, normal with one (no sibling to
    # take turns with, and batch would only make each answer wait for the tick).
    cpu_scheduling: str = "auto"
    # How long a worker runs before a sibling on its core gets a turn (Linux >=
    # 6.12 custom slices; 0 = the kernel's, ~3 ms; unset = 20 ms under batch, the
    # kernel's under normal). See dns_filter.cpuslice.
    cpu_slice_ms: float | None = None
    # Workers that find themselves on one CPU: the higher-numbered hands its UDP
    # queue to the lower and sleeps while they stay there (dns_filter.handover).
    udp_handover: bool = True
    metrics_address: str = "127.0.0.1"
    metrics_port: int = 9153  # 0 disables
    database_url: str = ""  # sqlite:///abs/path.db or postgres://user:pass@host:port/db
    # This edge box's name ([general] box): heartbeat in the boxes table every
    # heartbeat_s (dns_filter/heartbeat.py); empty: no heartbeat.
    box: str = ""
    heartbeat_s: float = 5.0
    # The NASes whose sessions this resolver knows: "all" (the default: every NAS
    # that writes accounting to the database), or a list of NAS addresses (radacct
    # nasipaddress). Every resolver a NAS hands out to its subscribers must serve
    # that NAS, or queries to it fall back to default_categories.
    nas: list[str] | str = "all"
    state_dir: Path = Path("/var/lib/ispedge/dns")
    blocklist_dir: Path = Path("/var/lib/ispedge/blocklists")
    poll_interval_s: float = 0.2
    # The fallback poll while PostgreSQL's NOTIFY wakes it. 2 s (scale2) let a parental
    # change miss its 1 s once in CI (tests/dns/test_resolver_process.py, PostgreSQL,
    # 1.03 s): a wake lost somewhere not yet found. Until it is, the fallback stays the
    # 0.2 s it was, which bounds any such miss.
    listen_poll_s: float = 0.2
    full_reload_s: float = 300.0  # the safety-net check (a diff off the answer thread)
    blocklist_check_s: float = 1.0
    # Block log (dns_block_daily / dns_block_recent): written every block_log_interval_s.
    block_log: bool = True
    block_log_interval_s: float = 1.0
    block_log_days: int = 7
    block_log_max_recent: int = 20_000  # distinct (address, domain) per batch

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        self.blocklist_dir = Path(self.blocklist_dir)
        if self.block_mode not in BLOCK_MODES:
            raise ValueError(f"block_mode must be one of {BLOCK_MODES}, not {self.block_mode!r}")
        if self.block_mode == "page" and not (self.blocked_page_ipv4 or self.blocked_page_ipv6):
            raise ValueError("block_mode 'page' needs blocked_page_ipv4 and/or blocked_page_ipv6")
        for name, version in (("expired_page_ipv4", 4), ("expired_page_ipv6", 6)):
            value = getattr(self, name)
            if value:
                try:
                    ok = ipaddress.ip_address(value).version == version
                except ValueError:
                    ok = False
                if not ok:
                    raise ValueError(f"{name} must be an IPv{version} address, not {value!r}")
        self.expired_allow = [n.strip().lower().rstrip(".") for n in self.expired_allow
                              if n.strip()]
        if (self.expired_page_ipv4 or self.expired_page_ipv6) and not self.expired_allow:
            raise ValueError("expired_page_ipv4/ipv6 need expired_allow: the portal's own "
                             "names, or an expired subscriber cannot reach it to renew")
        if self.cpu_scheduling not in CPU_SCHEDULING:
            raise ValueError(f"cpu_scheduling must be one of {CPU_SCHEDULING}, "
                             f"not {self.cpu_scheduling!r}")
        slice_ms = self.cpu_slice_ms
        if slice_ms is not None and (
            isinstance(slice_ms, bool)
            or not isinstance(slice_ms, int | float)
            or (slice_ms and not cpuslice.MIN_SLICE_MS <= slice_ms <= cpuslice.MAX_SLICE_MS)
        ):
            raise ValueError(
                f"cpu_slice_ms must be unset, 0 (kernel default) or between "
                f"{cpuslice.MIN_SLICE_MS} and {cpuslice.MAX_SLICE_MS}, not {slice_ms!r}"
            )
        if not isinstance(self.udp_handover, bool):
            raise ValueError(f"udp_handover must be true or false, not {self.udp_handover!r}")
        for name in ("tcp_max_connections", "tcp_max_connections_per_source"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
        for name in ("tcp_idle_timeout_s", "tcp_query_timeout_s", "tcp_max_lifetime_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name} must be a number of seconds > 0, not {value!r}")
        self.nas = _nas_list(self.nas)
        if len(self.upstreams) < 1:
            raise ValueError("at least one upstream is required")

    def served_nas(self) -> list[str] | None:
        """The NAS addresses served, or None for every NAS."""
        return None if self.nas == "all" else list(self.nas)

    def worker_count(self) -> int:
        if self.workers == "auto":
            return max(1, len(os.sched_getaffinity(0)))
        return max(1, int(self.workers))

    def scheduling(self) -> tuple[str, float]:
        """The CPU policy and slice (ms, 0 = the kernel's) each worker runs with.

        Measured (bench/scale_bench.py --dns-b, 20k subscribers, the peers on
        box00's two cores at load 4-9, two resolvers side by side in each run):
        one worker's answer p99 in the client's socket 3.13 / 2.03 / 4.13 ms under
        normal against 5.28 / 3.79 / 6.90 ms under batch, its wait for a CPU per
        run about halved; two identical resolvers were within 0.7 ms. A short
        slice under normal (0.5 ms) changed nothing (4.22 vs 3.95, 4.44 vs 4.83).
        With several workers, batch is what keeps siblings on one core from
        preempting each other per packet (server.set_cpu_scheduling).
        """
        policy = self.cpu_scheduling
        if policy == "auto":
            policy = "batch" if self.worker_count() > 1 else "normal"
        slice_ms = self.cpu_slice_ms
        if slice_ms is None:
            slice_ms = 20.0 if policy == "batch" else 0.0
        return policy, float(slice_ms)

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> DnsSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown dns settings: {sorted(unknown)}")
        return cls(**raw)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        return {
            f.name: (str(v) if isinstance(v := getattr(self, f.name), Path) else v)
            for f in fields(self)
        }

    @classmethod
    def from_json_file(cls, path: str | Path) -> DnsSettings:
        return cls.from_dict(json.loads(Path(path).read_text()))


def assignments(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE pairs (the benches' --dns-set) as settings fields, each value read
    as JSON where it parses (0.5, true, ["a"]), else as text ("normal")."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, not {pair!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _nas_list(value: object) -> list[str] | str:
    """`nas`: "all", or NAS addresses (a list, or comma-separated text) made canonical."""
    if isinstance(value, str):
        if value.strip() == "all":
            return "all"
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise ValueError(f'nas must be "all" or a list of NAS addresses, not {value!r}')
    out = []
    for item in value:
        try:
            out.append(str(ipaddress.ip_address(str(item).strip())))
        except ValueError:
            raise ValueError(f"nas: {item!r} is not a NAS IP address") from None
    return out


def parse_hostport(value: str, default_port: int = 53) -> tuple[str, int]:
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, int(port)
    return value, default_port
