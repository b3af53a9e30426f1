"""Helpers for tests/security/test_resolver_tcp.py: a resolver started with a
service's usual descriptor limit, UDP latency probes, and the TCP attacker.

The attacker runs as its own process (`python -m tests.security._resolver_tcp_helpers`)
so its thousands of sockets cost the measuring test process neither descriptors
nor GIL turns: a latency measured by the test is the resolver's.
"""

from __future__ import annotations

import argparse
import errno
import heapq
import json
import os
import random
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import dns.message

from tests.dns.conftest import PYTHON, ROOT, Launcher, Proc, free_port

# What systemd gives a service unless told otherwise: soft 1024. The hard limit
# is kept low enough that 200 x 20 attack connections exceed what any resolver
# could hold, so the total cap must be reached.
SERVICE_NOFILE = (1024, 4096)
# A length prefix announcing 64 bytes that never all arrive.
DRIBBLE = b"\x00\x40" + bytes(64)


def raise_nofile(needed: int) -> int:
    """Raise this process's soft descriptor limit to the hard one; fail (never skip)
    when even that is below `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise RuntimeError(f"needs {needed} descriptors, the hard limit is {hard}")
    return soft


@dataclass
class Resolver(Proc):
    metrics_port: int = 0


def start_resolver(
    launcher: Launcher, upstream_port: int, nofile: tuple[int, int] = SERVICE_NOFILE,
    **overrides: object,
) -> Resolver:
    """The real resolver process (tests/dns settings), started with this descriptor limit."""
    port, metrics_port = free_port(), free_port()
    settings: dict[str, object] = {
        "listen_address": "127.0.0.1",
        "listen_port": port,
        "upstreams": [f"127.0.0.1:{upstream_port}"],
        "upstream_timeout_s": 0.5,
        "served_networks": ["127.0.0.0/16"],
        "metrics_port": metrics_port,
        "state_dir": str(launcher.tmp / "state"),
        "blocklist_dir": str(launcher.tmp / "blocklists"),
        "rate_limit_qps": 0,  # the probes measure latency back to back from one address
        "block_log": False,
    }
    settings.update(overrides)
    cfg = launcher.tmp / f"resolver-{port}.json"
    cfg.write_text(json.dumps(settings))
    soft, hard = nofile
    boot = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard})); "
        "os.execv(sys.executable, [sys.executable, '-m', 'dns_filter', '--config-json', "
        f"{str(cfg)!r}])"
    )
    p = launcher._start([PYTHON, "-c", boot], "resolver", port)  # stopped with the launcher
    return Resolver(p.proc, p.port, p.log_path, metrics_port)


def metrics(resolver: Resolver) -> dict[str, float]:
    """The resolver's /metrics as {"name{labels}": value}."""
    url = f"http://127.0.0.1:{resolver.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def udp_latencies_ms(
    port: int, count: int, source: str = "127.0.0.1", name: str = "example.test",
    gap_s: float = 0.002, timeout_s: float = 1.0,
) -> list[float]:
    """`count` UDP queries one after another; a lost answer counts as the timeout."""
    wire = dns.message.make_query(name, "A").to_wire()
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(timeout_s)
        for i in range(count):
            query = (i & 0xFFFF).to_bytes(2, "big") + wire[2:]
            started = time.perf_counter()
            s.sendto(query, ("127.0.0.1", port))
            try:
                while s.recv(4096)[:2] != query[:2]:
                    pass
                out.append((time.perf_counter() - started) * 1000)
            except TimeoutError:
                out.append(timeout_s * 1000)
            time.sleep(gap_s)
    return out


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class Attacker:
    """The attacking process: start, wait until every connection was attempted, stop."""

    def __init__(self, port: int, sources: list[str], per_source: int, dribble_s: float,
                 reconnect_per_s: float, log_path: Path) -> None:
        self.log_path = log_path
        args = [PYTHON, "-m", "tests.security._resolver_tcp_helpers", "--port", str(port),
                "--sources", ",".join(sources), "--per-source", str(per_source),
                "--dribble-s", str(dribble_s), "--reconnect-per-s", str(reconnect_per_s)]
        with log_path.open("w") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "READY" in self.log_path.read_text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"attacker did not start:\n{self.log_path.read_text()}")

    def last_stats(self) -> dict[str, int]:
        lines = [ln for ln in self.log_path.read_text().splitlines() if ln.startswith("STATS ")]
        return json.loads(lines[-1][6:]) if lines else {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _attack(port: int, sources: list[str], per_source: int, dribble_s: float,
            reconnect_per_s: float) -> None:
    """Hold per_source connections from each source; send one byte of a never-ending
    message on each every dribble_s; reopen what the server closes (at most
    reconnect_per_s per second). Prints STATS twice a second until SIGTERM."""
    slots = [src for src in sources for _ in range(per_source)]
    raise_nofile(len(slots) + 64)
    # A real attacker runs on its own machine: on this shared 2-core VM its CPU
    # must not be what slows the resolver's UDP answers, so it yields to them.
    os.nice(19)
    sel = selectors.DefaultSelector()
    socks: dict[int, socket.socket] = {}
    sent: dict[int, int] = {}
    due: list[tuple[float, int]] = []  # (next byte due, slot)
    reopen: deque[int] = deque()
    stats = {"opened": 0, "open": 0, "closed_by_server": 0, "connect_failed": 0, "bytes": 0}
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))

    def open_slot(i: int) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((slots[i], 0))
            err = s.connect_ex(("127.0.0.1", port))
        except OSError:
            err = errno.EADDRNOTAVAIL
        if err not in (0, errno.EINPROGRESS):
            s.close()
            stats["connect_failed"] += 1
            reopen.append(i)
            return
        socks[i] = s
        sent[i] = 0
        sel.register(s, selectors.EVENT_READ, i)
        stats["opened"] += 1
        stats["open"] += 1
        # the first byte at once, the rest every dribble_s
        heapq.heappush(due, (time.monotonic() + random.uniform(0, 0.2), i))

    def close_slot(i: int) -> None:
        s = socks.pop(i)
        sel.unregister(s)
        s.close()
        stats["open"] -= 1
        stats["closed_by_server"] += 1
        reopen.append(i)

    for i in range(len(slots)):
        open_slot(i)
    print("READY", json.dumps(stats), flush=True)
    last_stats = last_tick = time.monotonic()
    budget = 0.0
    while not stop[0]:
        for key, _ in sel.select(0.02):
            i = key.data
            try:
                data = socks[i].recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                close_slot(i)
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, i = heapq.heappop(due)
            s = socks.get(i)
            if s is None:
                continue  # closed; its reopened socket has its own entry
            try:
                s.send(DRIBBLE[sent[i] % len(DRIBBLE) : sent[i] % len(DRIBBLE) + 1])
                sent[i] += 1
                stats["bytes"] += 1
            except BlockingIOError:
                pass
            except OSError:
                close_slot(i)
                continue
            heapq.heappush(due, (now + dribble_s, i))
        budget = min(budget + (now - last_tick) * reconnect_per_s, reconnect_per_s)
        last_tick = now
        while reopen and budget >= 1:
            budget -= 1
            open_slot(reopen.popleft())
        if now - last_stats >= 0.5:
            last_stats = now
            print("STATS", json.dumps(stats), flush=True)
    print("STATS", json.dumps(stats), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sources", required=True, help="comma-separated source addresses")
    parser.add_argument("--per-source", type=int, required=True)
    parser.add_argument("--dribble-s", type=float, default=7.0)
    parser.add_argument("--reconnect-per-s", type=float, default=200.0)
    a = parser.parse_args()
    _attack(a.port, a.sources.split(","), a.per_source, a.dribble_s, a.reconnect_per_s)


if __name__ == "__main__":
    sys.exit(main())
