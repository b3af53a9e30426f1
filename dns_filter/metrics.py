"""Counters and the Prometheus text format.

Each worker keeps plain integer counters (no locks: one reactor thread).
With several workers every worker writes its snapshot to a file each second
and the supervisor sums them, so one scrape target covers the whole box.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

LATENCY_BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
# per-worker gauges that add up over workers (the others are the same in every worker)
SUMMED_GAUGES = frozenset(
    {"udp_queues_hosted", "tcp_connections_open", "tcp_connections_max"}
)
# TCP connection events (dns_filter.tcp_guard): refused at the per-source cap,
# evicted at the total cap, closed at a deadline (idle, query, lifetime).
TCP_TIMEOUTS = ("idle", "query", "lifetime")


class Metrics:
    def __init__(self) -> None:
        self.queries: dict[str, int] = defaultdict(int)  # by result
        self.blocks: dict[str, int] = defaultdict(int)  # by category
        self.upstream_queries: dict[str, int] = defaultdict(int)
        self.upstream_failures: dict[str, int] = defaultdict(int)
        self.upstream_latency_buckets: dict[str, list[int]] = {}
        self.upstream_latency_sum_ms: dict[str, float] = defaultdict(float)
        self.gauges: dict[str, float] = {}
        self.tcp: dict[str, int] = defaultdict(int)  # "refused_per_source", "evicted", "timeout_*"

    def observe_upstream(self, upstream: str, latency_ms: float) -> None:
        buckets = self.upstream_latency_buckets.get(upstream)
        if buckets is None:
            buckets = self.upstream_latency_buckets[upstream] = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        for i, bound in enumerate(LATENCY_BUCKETS_MS):
            if latency_ms <= bound:
                buckets[i] += 1
                break
        else:
            buckets[-1] += 1
        self.upstream_latency_sum_ms[upstream] += latency_ms
        self.upstream_queries[upstream] += 1

    def snapshot(self) -> dict[str, object]:
        """A copy safe to take from another thread (the /metrics thread)."""
        for _ in range(10):
            try:
                return self._snapshot()
            except RuntimeError:  # a dict grew mid-copy on the reactor thread; try again
                continue
        return self._snapshot()

    def _snapshot(self) -> dict[str, object]:
        return {
            "queries": dict(self.queries),
            "blocks": dict(self.blocks),
            "upstream_queries": dict(self.upstream_queries),
            "upstream_failures": dict(self.upstream_failures),
            "upstream_latency_buckets": {
                k: list(v) for k, v in self.upstream_latency_buckets.items()
            },
            "upstream_latency_sum_ms": dict(self.upstream_latency_sum_ms),
            "gauges": dict(self.gauges),
            "tcp": dict(self.tcp),
        }


def _merge(snapshots: Iterable[dict[str, object]]) -> dict[str, dict[str, object]]:
    merged: dict[str, dict[str, object]] = defaultdict(dict)
    for snap in snapshots:
        for section, values in snap.items():
            target = merged[section]
            for key, value in values.items():  # type: ignore[attr-defined]
                if isinstance(value, list):
                    old = target.get(key) or [0] * len(value)
                    target[key] = [a + b for a, b in zip(old, value, strict=True)]  # type: ignore[arg-type]
                elif section == "gauges" and key not in SUMMED_GAUGES:
                    # Policy size/age are the same in every worker: report the worst, not a sum.
                    target[key] = max(float(target.get(key, value)), float(value))  # type: ignore[arg-type]
                else:
                    target[key] = target.get(key, 0) + value  # type: ignore[operator]
    return merged


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(snapshots: Iterable[dict[str, object]]) -> str:
    m = _merge(snapshots)
    out: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    family("ispedge_dns_queries_total", "counter", "DNS queries by result")
    for result, n in sorted(m["queries"].items()):
        out.append(f'ispedge_dns_queries_total{{result="{_label(result)}"}} {n}')
    family("ispedge_dns_blocked_total", "counter", "Blocked queries by category")
    for category, n in sorted(m["blocks"].items()):
        out.append(f'ispedge_dns_blocked_total{{category="{_label(category)}"}} {n}')
    hits = float(m["queries"].get("cached", 0))  # type: ignore[arg-type]
    forwarded = float(m["queries"].get("forwarded", 0))  # type: ignore[arg-type]
    family("ispedge_dns_cache_hit_ratio", "gauge", "Cache hits / (hits + upstream lookups)")
    out.append(
        f"ispedge_dns_cache_hit_ratio {hits / (hits + forwarded) if hits + forwarded else 0:.6f}"
    )
    family("ispedge_dns_upstream_queries_total", "counter", "Upstream answers received")
    for up, n in sorted(m["upstream_queries"].items()):
        out.append(f'ispedge_dns_upstream_queries_total{{upstream="{_label(up)}"}} {n}')
    family(
        "ispedge_dns_upstream_failures_total",
        "counter",
        "Upstream timeouts, errors and SERVFAIL/REFUSED",
    )
    for up, n in sorted(m["upstream_failures"].items()):
        out.append(f'ispedge_dns_upstream_failures_total{{upstream="{_label(up)}"}} {n}')
    family("ispedge_dns_upstream_latency_ms", "histogram", "Upstream round trip in milliseconds")
    for up, buckets in sorted(m["upstream_latency_buckets"].items()):
        total = 0
        for bound, n in zip((*LATENCY_BUCKETS_MS, "+Inf"), buckets, strict=True):  # type: ignore[arg-type]
            total += n
            labels = f'upstream="{_label(up)}",le="{bound}"'
            out.append(f"ispedge_dns_upstream_latency_ms_bucket{{{labels}}} {total}")
        latency_sum = m["upstream_latency_sum_ms"].get(up, 0)
        out.append(f'ispedge_dns_upstream_latency_ms_sum{{upstream="{_label(up)}"}} {latency_sum}')
        out.append(f'ispedge_dns_upstream_latency_ms_count{{upstream="{_label(up)}"}} {total}')
    tcp = m["tcp"]
    family(
        "ispedge_dns_tcp_refused_per_source_total",
        "counter",
        "TCP connections refused: their source address was at its connection cap",
    )
    out.append(f"ispedge_dns_tcp_refused_per_source_total {tcp.get('refused_per_source', 0)}")
    family(
        "ispedge_dns_tcp_evicted_total",
        "counter",
        "Idle TCP connections closed to admit a new client at the total cap",
    )
    out.append(f"ispedge_dns_tcp_evicted_total {tcp.get('evicted', 0)}")
    family(
        "ispedge_dns_tcp_timeouts_total",
        "counter",
        "TCP connections closed at a deadline: idle, query (incomplete message), lifetime",
    )
    for reason in TCP_TIMEOUTS:
        out.append(
            f'ispedge_dns_tcp_timeouts_total{{reason="{reason}"}} {tcp.get("timeout_" + reason, 0)}'
        )
    for name, value in sorted(m["gauges"].items()):
        family(f"ispedge_dns_{name}", "gauge", name.replace("_", " "))
        out.append(f"ispedge_dns_{name} {value}")
    return "\n".join(out) + "\n"
