"""The TCP connection rules (dns_filter.tcp_guard) as plain values; their settings, metrics."""

from __future__ import annotations

import pytest

from dns_filter.metrics import Metrics, render
from dns_filter.settings import DnsSettings
from dns_filter.tcp_guard import (
    EVICT_SCAN,
    TcpConnections,
    TcpLimits,
    connection_cap,
    deadline,
)

LIMITS = TcpLimits(
    max_connections=4, max_per_source=2, idle_timeout_s=10, query_timeout_s=3, max_lifetime_s=120
)


def test_per_source_cap_refuses_the_newest_and_evicts_nobody() -> None:
    table = TcpConnections(LIMITS)
    a1, _ = table.admit("10.0.0.1", 0)
    a2, _ = table.admit("10.0.0.1", 1)
    assert a1 is not None and a2 is not None
    assert table.admit("10.0.0.1", 2) == (None, None)
    # even at the total cap, a source at its own cap cannot push anyone out
    table.admit("10.0.0.2", 3)
    table.admit("10.0.0.3", 4)
    assert len(table) == 4
    assert table.admit("10.0.0.1", 5) == (None, None)
    assert len(table) == 4 and a1 in table.order and a2 in table.order
    # a closed connection frees its source's slot
    table.remove(a1)
    conn, victim = table.admit("10.0.0.1", 6)
    assert conn is not None and victim is None
    assert table.by_source["10.0.0.1"] == 2


def test_total_cap_evicts_the_longest_idle_not_the_new_client() -> None:
    table = TcpConnections(LIMITS)
    old, _ = table.admit("10.0.0.1", 0)  # dribbler: never completes a query
    busy, _ = table.admit("10.0.0.2", 1)
    active, _ = table.admit("10.0.0.3", 2)
    fresh, _ = table.admit("10.0.0.4", 3)
    assert old and busy and active and fresh
    table.touch(active, 4)  # completed a query: most recently in use
    conn, victim = table.admit("10.0.0.5", 5)
    assert conn is not None and victim is old
    assert len(table) == 4 and "10.0.0.1" not in table.by_source
    # a connection awaiting our answer is skipped while an idle one exists
    busy.pending = 1
    conn2, victim2 = table.admit("10.0.0.6", 6)
    assert conn2 is not None and victim2 is fresh
    # touch moved `active` behind `fresh` and the new ones, so it is not next either
    assert list(table.order)[:2] == [busy, active]


def test_eviction_takes_the_longest_idle_when_every_connection_awaits_an_answer() -> None:
    limits = TcpLimits(EVICT_SCAN + 10, EVICT_SCAN + 10, 10, 3, 120)
    table = TcpConnections(limits)
    conns = [table.admit(f"10.0.{i // 250}.{i % 250}", i)[0] for i in range(limits.max_connections)]
    for c in conns:
        assert c is not None
        c.pending = 1
    conns[-1].pending = 0  # idle, but beyond the scan window: the cap still holds at once
    conn, victim = table.admit("10.9.9.9", 1000)
    assert conn is not None and victim is conns[0]
    assert len(table) == limits.max_connections


def test_remove_is_idempotent_and_keeps_counts_exact() -> None:
    table = TcpConnections(LIMITS)
    a, _ = table.admit("10.0.0.1", 0)
    assert a is not None
    table.remove(a)
    table.remove(a)  # evicted, then its connectionLost arrives
    assert len(table) == 0 and table.by_source == {}
    table.touch(a, 5)  # a late answer for a forgotten connection does not resurrect it
    assert len(table) == 0


def test_query_deadline_runs_from_the_first_byte_and_is_not_reset_per_byte() -> None:
    table = TcpConnections(LIMITS)
    conn, _ = table.admit("10.0.0.1", 100)
    assert conn is not None
    assert deadline(conn, LIMITS) == (110, "idle")
    conn.message_started_at = 107  # one byte at +7 s: 3 s for the whole message
    assert deadline(conn, LIMITS) == (110, "query")
    # more bytes of the same message change nothing in the state, so nothing here either
    assert deadline(conn, LIMITS) == (110, "query")
    conn.message_started_at = None
    table.touch(conn, 109)  # the message completed and was answered
    assert deadline(conn, LIMITS) == (119, "idle")
    conn.pending = 1  # waiting for the upstream: no idle deadline, only the lifetime
    assert deadline(conn, LIMITS) == (220, "lifetime")


def test_lifetime_bounds_a_busy_connection() -> None:
    table = TcpConnections(LIMITS)
    conn, _ = table.admit("10.0.0.1", 0)
    assert conn is not None
    table.touch(conn, 115)
    assert deadline(conn, LIMITS) == (120, "lifetime")
    conn.message_started_at = 119
    assert deadline(conn, LIMITS) == (120, "lifetime")


@pytest.mark.parametrize(
    ("configured", "nofile", "cap"),
    [
        (4096, 20000, 4096),  # plenty of descriptors: as configured
        (4096, 4096, 3584),  # a reserve of one eighth stays free
        (4096, 1024, 896),
        (4096, 256, 128),  # at least 128 stay free
        (10, 100, 1),  # never below one
    ],
)
def test_connection_cap_stays_below_the_descriptor_limit(
    configured: int, nofile: int, cap: int
) -> None:
    assert connection_cap(configured, nofile) == cap
    assert cap < nofile


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("tcp_max_connections", 0),
        ("tcp_max_connections_per_source", -1),
        ("tcp_max_connections", "many"),
        ("tcp_max_connections_per_source", True),
        ("tcp_idle_timeout_s", 0),
        ("tcp_query_timeout_s", -1.5),
        ("tcp_max_lifetime_s", "2m"),
    ],
)
def test_tcp_settings_are_validated(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key):
        DnsSettings.from_dict({key: value})


def test_tcp_settings_defaults_and_overrides() -> None:
    s = DnsSettings()
    assert (s.tcp_max_connections, s.tcp_max_connections_per_source) == (4096, 32)
    assert (s.tcp_idle_timeout_s, s.tcp_query_timeout_s, s.tcp_max_lifetime_s) == (10, 3, 120)
    s = DnsSettings.from_dict({"tcp_max_connections": 100, "tcp_query_timeout_s": 1.5})
    assert s.tcp_max_connections == 100 and s.tcp_query_timeout_s == 1.5


def test_tcp_metrics_are_rendered_and_summed_over_workers() -> None:
    a, b = Metrics(), Metrics()
    a.tcp["refused_per_source"] += 3
    b.tcp["refused_per_source"] += 2
    a.tcp["evicted"] += 7
    b.tcp["timeout_query"] += 4
    a.tcp["timeout_idle"] += 1
    a.gauges["tcp_connections_open"] = 10
    b.gauges["tcp_connections_open"] = 5
    a.gauges["tcp_connections_max"] = 100
    b.gauges["tcp_connections_max"] = 100
    text = render([a.snapshot(), b.snapshot()])
    assert "ispedge_dns_tcp_refused_per_source_total 5" in text
    assert "ispedge_dns_tcp_evicted_total 7" in text
    assert 'ispedge_dns_tcp_timeouts_total{reason="query"} 4' in text
    assert 'ispedge_dns_tcp_timeouts_total{reason="idle"} 1' in text
    assert 'ispedge_dns_tcp_timeouts_total{reason="lifetime"} 0' in text
    assert "ispedge_dns_tcp_connections_open 15" in text
    assert "ispedge_dns_tcp_connections_max 200" in text
    # no worker has reported yet: the families are there, at zero
    assert "ispedge_dns_tcp_evicted_total 0" in render([])


def test_expired_yields_due_connections_in_bounded_batches_with_their_reason() -> None:
    table = TcpConnections(LIMITS)
    dribblers = [table.admit(f"10.0.1.{i}", 0)[0] for i in range(3)]
    quiet, _ = table.admit("10.0.2.1", 0)
    assert all(dribblers) and quiet is not None
    for c in dribblers:
        assert c is not None
        c.message_started_at = 1.0  # first byte at 1 s: due at 4 s
        table.schedule(c)
    assert table.next_due() == 4.0
    assert table.expired(3.9, 10) == []
    first = table.expired(4.0, 2)  # at most two per turn
    assert [r for _, r in first] == ["query", "query"]
    rest = table.expired(4.0, 2)
    assert [r for _, r in rest] == ["query"]
    assert {c for c, _ in first + rest} == set(dribblers)
    assert len(table) == 1 and "10.0.1.0" not in table.by_source  # forgotten, slots freed
    # the quiet one: idle at 10 s, unless a query moved its deadline later
    table.touch(quiet, 8.0)
    assert table.expired(10.0, 10) == []  # its old entry is stale and skipped
    assert table.expired(18.0, 10) == [(quiet, "idle")]
    assert len(table) == 0 and table.expired(1000.0, 10) == []


def test_closed_connections_leave_no_deadline_behind() -> None:
    table = TcpConnections(LIMITS)
    a, _ = table.admit("10.0.0.1", 0)
    b, _ = table.admit("10.0.0.2", 0)
    assert a is not None and b is not None
    table.remove(a)  # the client closed it
    assert table.expired(200.0, 10) == [(b, "idle")]
    # a long busy life pushes many entries; the heap is compacted, not grown for ever
    c, _ = table.admit("10.0.0.3", 0)
    assert c is not None
    for t in range(5000):
        table.touch(c, t / 100)
    assert len(table.deadlines) <= 4 * len(table) + 1024 + 1
    assert table.expired(49.99 + 10, 10) == [(c, "idle")]
