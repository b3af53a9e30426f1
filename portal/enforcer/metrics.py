"""The enforcer's Prometheus metrics (issue 17), on `[enforcer] metrics_address` /
`metrics_port`, never on a public port.

Counters and histograms are updated on the event loop by the daemon; the lags
are gauges set at each heartbeat (one query every heartbeat_s); CoA packet counts
are read from the CoA client's own stats when scraped. Every label value comes
from a closed set (results, pass kinds) or the box's own name: nothing a
subscriber or a NAS sends becomes a label. Names follow the resolver's
(`ispedge_dns_*`, dns_filter/metrics.py): `ispedge_enforcer_*`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from portal import metrics

PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
COA_RESULTS = ("acked", "nak", "session_gone", "no_answer", "error")


class Metrics:
    def __init__(self, box: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Gauge("ispedge_enforcer_info", "This enforcer's box (value 1)", ["box"],
              registry=r).labels(box).set(1)
        self.journal_lag = Gauge("ispedge_enforcer_journal_lag_rows",
                                 "Journal rows above this box's cursor (at its last heartbeat)",
                                 registry=r)
        self.journal_cursor = Gauge("ispedge_enforcer_journal_cursor",
                                    "The journal id this box has read", registry=r)
        self.ingest_lag = Gauge("ispedge_enforcer_ingest_lag_rows",
                                "Accounting changes (radacct_changes) not yet ingested",
                                registry=r)
        self.ingest_last = Gauge("ispedge_enforcer_ingest_last_success_timestamp_seconds",
                                 "When this box's last usage ingest pass succeeded",
                                 registry=r)
        self.ingest_seconds = Histogram("ispedge_enforcer_ingest_seconds",
                                        "Usage ingest pass duration", ["kind"],
                                        buckets=PASS_BUCKETS, registry=r)
        self.heartbeat = Gauge("ispedge_enforcer_heartbeat_timestamp_seconds",
                               "This box's last heartbeat written", registry=r)
        self.pass_seconds = Histogram("ispedge_enforcer_pass_seconds",
                                      "Enforcement pass duration: full = reconcile of every"
                                      " subscriber, partial = those the journal named",
                                      ["kind"], buckets=PASS_BUCKETS, registry=r)
        self.coa_sent = Counter("ispedge_enforcer_coa_sent",
                                "CoA/Disconnect requests sent (one per wish; a retry"
                                " after backoff is sent again)", registry=r)
        self.coa_retried = Counter("ispedge_enforcer_coa_retried",
                                   "Requests that are a retry of an earlier failed attempt",
                                   registry=r)
        self.coa_result = Counter("ispedge_enforcer_coa_results",
                                  "CoA/Disconnect outcomes: acked; nak; session_gone (NAK 503);"
                                  " no_answer (after the client's retransmits); error",
                                  ["result"], registry=r)
        for result in COA_RESULTS:
            self.coa_result.labels(result)
        self.prunes = Counter("ispedge_enforcer_retention_rows_pruned",
                              "Rows moved or pruned by the data lifecycle", ["table"],
                              registry=r)
        self._coa_stats: Any = None

    def watch_coa(self, stats: Any) -> None:
        """The CoA client's packet counters (coa.ClientStats), read at each scrape."""
        if self._coa_stats is None:
            self._coa_stats = stats
            self.registry.register(_CoaPackets(self))

    def serve(self, address: str, port: int) -> bool:
        """Start the /metrics HTTP server (a thread); False if off or the port is taken."""
        return metrics.serve(self.registry, address, port, "enforcer")


class _CoaPackets(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.metrics._coa_stats
        if stats is None:
            return
        packets = CounterMetricFamily("ispedge_enforcer_coa_packets",
                                      "CoA client datagrams by event", labels=["event"])
        for event in ("sent", "retransmitted", "answered", "timeouts", "bad_authenticator",
                      "stray"):
            packets.add_metric([event], float(getattr(stats, event, 0)))
        yield packets
        yield GaugeMetricFamily("ispedge_enforcer_coa_in_flight", "CoA requests awaiting an"
                                " answer", value=float(getattr(stats, "in_flight", 0)))
