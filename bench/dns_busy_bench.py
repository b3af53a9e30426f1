"""DNS answer latency on a busy box: the resolver's CPU scheduling settings A/B.

    .venv/bin/python bench/dns_busy_bench.py [--hogs 4] [--rounds 4] [--seconds 8]
        [--config NAME:KEY=VALUE,KEY=VALUE ...]

An edge box runs the resolver beside the enforcer, the ingest and often
PostgreSQL; when they keep every core busy, a DNS answer waits for the CPU,
not for the resolver's own work. This starts one resolver per `--config` (by
default the settings' defaults and the alternatives), each at the niceness of
systemd/ispedge-dns.service (or `nice=N` in its config), answering cached names from an upstream on
loopback, and `--hogs` busy-loop processes at niceness 0 (default: two per
CPU). Round by round, in rotated order, one client at 200 queries/s (at the
resolver's niceness) times each resolver's answers for `--seconds`; the
figures are each configuration's p50/p99/p99.9 over all its rounds, and the
same with the hogs stopped (the reference). Same sitting, same load: the
configurations are compared with each other, not with another run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dns_filter import settings as dns_settings  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

# `nice` is not a resolver setting: the niceness that resolver and its client run at
DEFAULT_CONFIGS = [
    "default:",
    "default-nice0:nice=0",
    "batch-20ms:cpu_scheduling=batch,cpu_slice_ms=20",
    "normal-kernel:cpu_scheduling=normal,cpu_slice_ms=0",
    "normal-0.5ms:cpu_scheduling=normal,cpu_slice_ms=0.5",
]
NAMES = [f"n{i}.example.net" for i in range(50)]


def unit_nice() -> int:
    for line in (ROOT / "systemd/ispedge-dns.service").read_text().splitlines():
        if line.startswith("Nice="):
            return int(line.split("=", 1)[1])
    return 0


def query(name: str, qid: int) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + struct.pack(">HH", 1, 1)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def client(port: int, seconds: float, qps: float) -> list[float]:
    """Latency (s) of each answer, one query at a time at `qps`; a loss counts as 1 s."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    lat: list[float] = []
    i = 0
    end = time.monotonic() + seconds
    nxt = time.monotonic()
    while time.monotonic() < end:
        qid = i & 0xFFFF
        t = time.perf_counter()
        sock.sendto(query(NAMES[i % len(NAMES)], qid), ("127.0.0.1", port))
        try:
            while struct.unpack(">H", sock.recv(4096)[:2])[0] != qid:
                pass
            lat.append(time.perf_counter() - t)
        except TimeoutError:
            lat.append(1.0)
        i += 1
        nxt += 1.0 / qps
        time.sleep(max(0.0, nxt - time.monotonic()))
    sock.close()
    return lat


def hog() -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hogs", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--qps", type=float, default=200.0)
    parser.add_argument("--config", action="append", metavar="NAME:KEY=VALUE,...")
    parser.add_argument("--role", default="main", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "hog":
        hog()
    if args.role == "client":
        print(json.dumps(client(args.port, args.seconds, args.qps)), flush=True)
        return 0

    nice = unit_nice()
    configs = []
    for c in args.config or DEFAULT_CONFIGS:
        name, _, pairs = c.partition(":")
        overrides = dns_settings.assignments([kv for kv in pairs.split(",") if kv])
        configs.append((name, int(overrides.pop("nice", nice)), overrides))  # type: ignore[call-overload]
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="dns-busy-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def start(cmd: list[str], niceness: int, log: Path | None = None,
              out: bool = False) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(cmd, env=env, preexec_fn=lambda: os.nice(niceness),  # noqa: PLW1509
                             stdout=subprocess.PIPE if out else (log.open("wb") if log else
                                                                 subprocess.DEVNULL),
                             stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    try:
        auth = free_port()
        start([sys.executable, str(ROOT / "tests/dns/authserver.py"), "--port", str(auth)], 0)
        ports: dict[str, int] = {}
        niceness = {name: n for name, n, _ in configs}
        for name, n, overrides in configs:
            port = free_port()
            cfg = tmp / f"{name}.json"
            cfg.write_text(json.dumps({
                "listen_address": "127.0.0.1", "listen_port": port,
                "upstreams": [f"127.0.0.1:{auth}"], "served_networks": ["127.0.0.0/8"],
                "rate_limit_qps": 0, "metrics_port": 0, "state_dir": str(tmp / name),
                "blocklist_dir": str(tmp / "bl"), **overrides}))
            start([sys.executable, "-m", "dns_filter", "--config-json", str(cfg)], n,
                  log=tmp / f"{name}.log")
            ports[name] = port
        deadline = time.monotonic() + 60
        for name in ports:
            while "READY" not in (tmp / f"{name}.log").read_text():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready:\n" + (tmp / f"{name}.log").read_text())
                time.sleep(0.1)

        def measure(name: str, seconds: float) -> list[float]:
            c = start([sys.executable, __file__, "--role", "client", "--port", str(ports[name]),
                       "--seconds", str(seconds), "--qps", str(args.qps)], niceness[name], out=True)
            out, _ = c.communicate()
            return list(json.loads(out.decode().strip().splitlines()[-1]))

        for name in ports:  # every name cached upstream of the figures
            measure(name, len(NAMES) / args.qps + 0.5)
        quiet = {name: measure(name, args.seconds / 2) for name in ports}
        hogs = [start([sys.executable, __file__, "--role", "hog"], 0)
                for _ in range(args.hogs)]
        time.sleep(1.0)
        busy: dict[str, list[float]] = {name: [] for name in ports}
        names = list(ports)
        for rnd in range(args.rounds):
            for name in names[rnd % len(names):] + names[:rnd % len(names)]:
                busy[name] += measure(name, args.seconds)
        load = os.getloadavg()[0]
        for h in hogs:
            h.terminate()
        print(f"dns_busy_bench: {os.cpu_count()} CPUs, {args.hogs} busy loops at niceness 0,"
              f" resolvers and client at {nice} (systemd/ispedge-dns.service), {args.qps:g}"
              f" cached queries/s, {args.rounds} rounds x {args.seconds:g} s in rotated order;"
              f" load average {load:.1f}")
        for name, n, overrides in configs:
            b, q = busy[name], quiet[name]
            print(f"  {name:14s} busy p50 {pct(b, 50) * 1e3:5.2f} p99 {pct(b, 99) * 1e3:6.2f}"
                  f" p99.9 {pct(b, 99.9) * 1e3:6.2f} ms (n={len(b)}, lost"
                  f" {sum(1 for x in b if x >= 1.0)});  quiet p50 {pct(q, 50) * 1e3:5.2f}"
                  f" p99 {pct(q, 99) * 1e3:5.2f} ms  nice {n} {overrides or '(default settings)'}")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
