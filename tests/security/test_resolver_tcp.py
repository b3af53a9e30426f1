"""Resolver TCP exhaustion (issue 15): hostile TCP clients cannot lock others out.

Found: one host dribbling a byte every 7 s held 20,000 descriptors (the idle
timer restarted on every byte, nothing capped connections) and TCP DNS was
refused for everyone. Here a real resolver process, started with a service's
usual descriptor limit (soft 1024, as systemd gives), is attacked by a real
process holding thousands of connections; meanwhile a TCP query from a new
address must be answered within 1 s and UDP latency must not move.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from tests.dns.conftest import Launcher, addresses, query
from tests.security._resolver_tcp_helpers import (
    Attacker,
    Resolver,
    metrics,
    p99,
    raise_nofile,
    start_resolver,
    udp_latencies_ms,
)

# UDP p99 under attack may be this many times the baseline p99 (the worse of one
# taken before and one after the attack), or this many ms above it, whichever is
# larger: a 2-core VM shared with other test runs (load 8-10 while measured:
# 0.15-8 ms before and after, 4-9 ms under the 200 x 20 attack with 1,000
# reconnects/s; 170 ms before deadlines and accepts were done in bounded batches).
UDP_P99_FACTOR = 3.0
UDP_P99_SLACK_MS = 15.0
UDP_SAMPLES = 400
# How fast the attacker reopens what the resolver closes: enough to keep the
# total cap reached while connections time out or are evicted.
RECONNECT_PER_S = 1000
# The resolver's default total cap under the test's descriptor limit (4096 - 1/8).
TOTAL_CAP = 3584


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launch = Launcher(tmp_path)
    try:
        yield launch
    finally:
        launch.stop_all()


def tcp_probe_s(port: int, source: str) -> float:
    """Seconds until a TCP query from `source` is answered (fails past 1 s)."""
    started = time.monotonic()
    msg = query(port, "example.test", source=source, tcp=True, timeout=1.0)
    elapsed = time.monotonic() - started
    assert msg.rcode() == dns.rcode.NOERROR and addresses(msg) == ["192.0.2.1"]
    return elapsed


def metrics_once_open(resolver: Resolver, expected_open: int, timeout_s: float = 15.0
                      ) -> dict[str, float]:
    """The resolver's metrics once it holds `expected_open` connections (or at the
    timeout). The attacker's count includes connections still in the kernel's
    accept queue: on a loaded machine the resolver, accepting in bounded batches,
    reached the cap 1-3 s after the attacker was ready (3,160 of 3,584 seen 1 s
    after, in CI)."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = metrics(resolver)
        if seen["ispedge_dns_tcp_connections_open"] >= expected_open or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def attack_and_measure(
    launcher: Launcher, tmp_path: Path, sources: list[str], per_source: int, dribble_s: float,
    expected_open: int,
) -> tuple[Resolver, dict[str, float], dict[str, int], dict[str, float]]:
    """Baseline, then the attack: returns (resolver, its metrics at the end, attacker
    stats, its metrics as the probes began, once `expected_open` connections were
    held or 15 s passed). Asserts the TCP and UDP promises."""
    raise_nofile(256)
    auth = launcher.authserver()
    resolver = start_resolver(launcher, auth.port)
    query(resolver.port, "example.test")  # cached from here on: latency is ours alone
    tcp_probe_s(resolver.port, "127.0.200.1")
    baseline = udp_latencies_ms(resolver.port, UDP_SAMPLES)

    attacker = Attacker(resolver.port, sources, per_source, dribble_s, RECONNECT_PER_S,
                        tmp_path / "attacker.log")
    try:
        attacker.wait_ready()
        time.sleep(1.0)  # every connection has sent its first byte
        at_start = metrics_once_open(resolver, expected_open)
        probes = [tcp_probe_s(resolver.port, f"127.0.201.{k}") for k in range(1, 4)]
        during = udp_latencies_ms(resolver.port, UDP_SAMPLES // 2)
        probes += [tcp_probe_s(resolver.port, f"127.0.202.{k}") for k in range(1, 4)]
        during += udp_latencies_ms(resolver.port, UDP_SAMPLES // 2)
        # long enough for the first dribbled messages to pass their deadline
        time.sleep(2.0)
        probes.append(tcp_probe_s(resolver.port, "127.0.203.1"))
        seen = metrics(resolver)
        stats = attacker.last_stats()
    finally:
        attacker.stop()
    # The machine is shared: measure the baseline again once the attack is over and
    # its connections are gone, and compare with the worse of the two.
    deadline = time.monotonic() + 20
    while metrics(resolver)["ispedge_dns_tcp_connections_open"] > 1:
        assert time.monotonic() < deadline, "the attack's connections were never closed"
        time.sleep(0.2)
    after = udp_latencies_ms(resolver.port, UDP_SAMPLES)
    reference = max(p99(baseline), p99(after))
    print(f"UDP p99 before {p99(baseline):.2f} ms, under attack {p99(during):.2f} ms, "
          f"after {p99(after):.2f} ms; TCP probes {[round(p * 1000) for p in probes]} ms; "
          f"attacker {stats}; resolver open {at_start['ispedge_dns_tcp_connections_open']} "
          f"as the probes began, {seen['ispedge_dns_tcp_connections_open']} at the end")
    allowed = max(reference * UDP_P99_FACTOR, reference + UDP_P99_SLACK_MS)
    assert p99(during) <= allowed, (p99(baseline), p99(during), p99(after))
    return resolver, seen, stats, at_start


def test_dribbling_connections_from_one_address(launcher: Launcher, tmp_path: Path) -> None:
    """3,000 connections from one address, a byte every 7 s on each."""
    resolver, seen, stats, at_start = attack_and_measure(
        launcher, tmp_path, ["127.0.9.9"], 3000, dribble_s=7.0, expected_open=32
    )
    assert stats["opened"] >= 3000
    # the source got its cap and no more; the rest were refused one by one
    assert at_start["ispedge_dns_tcp_connections_open"] == 32
    assert seen["ispedge_dns_tcp_connections_open"] <= 32 + 1  # + the last probe, closing
    assert seen["ispedge_dns_tcp_refused_per_source_total"] >= 3000 - 32
    # its first bytes started a 3 s deadline that later bytes did not restart
    assert seen['ispedge_dns_tcp_timeouts_total{reason="query"}'] >= 1
    assert resolver.proc.poll() is None


def test_two_hundred_addresses_reach_the_total_cap(launcher: Launcher, tmp_path: Path) -> None:
    """200 addresses x 20 connections: more than the resolver may hold in all."""
    sources = [f"127.1.{i // 100}.{i % 100 + 1}" for i in range(200)]
    resolver, seen, stats, at_start = attack_and_measure(
        launcher, tmp_path, sources, 20, dribble_s=1.0, expected_open=TOTAL_CAP
    )
    assert stats["opened"] >= 4000
    cap = seen["ispedge_dns_tcp_connections_max"]
    # the default cap, sized below the raised descriptor limit (4096 - 1/8) ...
    assert cap == TOTAL_CAP
    # ... was full when the new clients came: each got in by evicting an idle one
    assert at_start["ispedge_dns_tcp_connections_open"] == cap
    assert seen["ispedge_dns_tcp_connections_open"] <= cap
    assert seen["ispedge_dns_tcp_evicted_total"] >= 4000 - cap
    assert resolver.proc.poll() is None


def test_a_dribbled_query_is_closed_at_its_deadline_not_kept_alive_per_byte(
    launcher: Launcher,
) -> None:
    """One byte every 0.5 s of a message that never completes (default settings):
    closed 3 s after its first byte, however many bytes follow."""
    auth = launcher.authserver()
    resolver = start_resolver(launcher, auth.port)
    wire = struct.pack("!H", 40) + bytes(40)
    closed_after = None
    with socket.create_connection(("127.0.0.1", resolver.port), timeout=5) as s:
        started = time.monotonic()
        for b in wire[:16]:  # 8 s of dribbling
            try:
                s.sendall(bytes([b]))
                s.settimeout(0.5)
                if s.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "a dribbling client was kept alive byte by byte"
    assert 2.5 <= closed_after <= 5.0
    seen = metrics(resolver)
    assert seen['ispedge_dns_tcp_timeouts_total{reason="query"}'] == 1


def test_a_busy_connection_is_closed_at_its_lifetime(launcher: Launcher) -> None:
    """Whole queries every 0.5 s: never idle, never mid-query, yet closed at
    tcp_max_lifetime_s so no client holds a descriptor for ever."""
    auth = launcher.authserver()
    resolver = start_resolver(launcher, auth.port, tcp_max_lifetime_s=3.0)
    q = dns.message.make_query("example.test", "A").to_wire()
    question = struct.pack("!H", len(q)) + q
    answered = 0
    with socket.create_connection(("127.0.0.1", resolver.port), timeout=5) as s:
        started = time.monotonic()
        while time.monotonic() - started < 8:
            try:
                s.sendall(question)
                s.settimeout(1.0)
                data = s.recv(4096)
            except OSError:
                break
            if not data:
                break
            answered += 1
            time.sleep(0.5)
        lived = time.monotonic() - started
    assert answered >= 3
    assert 2.5 <= lived <= 5.0
    seen = metrics(resolver)
    assert seen['ispedge_dns_tcp_timeouts_total{reason="lifetime"}'] == 1
    assert seen['ispedge_dns_tcp_timeouts_total{reason="idle"}'] == 0


def test_a_client_that_never_reads_is_not_buffered_for(launcher: Launcher) -> None:
    """Queries pipelined without reading a single answer: once ~64 KiB of answers wait
    unread, the resolver stops reading this client (its memory holds), while others
    are served; the connection is closed at its idle deadline."""
    auth = launcher.authserver()
    resolver = start_resolver(launcher, auth.port, tcp_idle_timeout_s=2.0)
    q = dns.message.make_query("example.test", "A").to_wire()
    question = struct.pack("!H", len(q)) + q
    with socket.create_connection(("127.0.0.1", resolver.port), timeout=5) as warm:
        warm.sendall(question)  # cached from here on: answered at once, none outstanding
        assert len(warm.recv(4096)) > 2
    flood = question * 640_000  # 20 MB of queries, 30 MB of answers if all were read
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        s.bind(("127.0.7.7", 0))
        s.connect(("127.0.0.1", resolver.port))
        s.settimeout(3.0)
        sent = 0
        with pytest.raises(TimeoutError):
            while sent < len(flood):
                sent += s.send(flood[sent : sent + 65536])
        # What the kernel buffers (the resolver's receive buffer, up to tcp_rmem's 6 MB,
        # and answers in its send buffer) is taken; the resolver's own reading stops.
        print(f"sent {sent / 1e6:.1f} MB of {len(flood) / 1e6:.1f} before the resolver stopped")
        assert sent < 12_000_000, "the resolver read on although nothing was read back"
        assert tcp_probe_s(resolver.port, "127.0.7.8") < 1.0
        # paused: no query in flight, nothing partial read; closed when idle (+ 2 s grace)
        s.settimeout(0.2)
        closed_at = None
        started = time.monotonic()
        while time.monotonic() - started < 10:
            try:
                if s.recv(1 << 20) == b"":
                    closed_at = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_at = time.monotonic() - started
                break
    assert closed_at is not None, "an unread connection was held open"
