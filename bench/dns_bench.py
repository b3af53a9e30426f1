# ruff: noqa: E501  (report lines in this script read better unwrapped)
"""Benchmark dns_filter against unbound and dnsmasq on loopback.

    .venv/bin/python bench/dns_bench.py [--seconds 6] [--domains 1000000]

dnsperf runs pinned to CPU 0 and every server to CPU 1 (taskset), so the
figure that matters is server CPU time per query (µs/query = server CPU
seconds / queries answered): dnsperf itself saturates near 100-140k qps.
Everything listens on 127.0.0.1 with free ports; every process this starts
is stopped at the end, and the whole run takes ~4 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402

from blocklists.settings import BlocklistSettings  # noqa: E402
from blocklists.update import update  # noqa: E402
from dns_filter import settings as settings_mod  # noqa: E402
from dns_filter import udp  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

PY = sys.executable
CLIENT_CPU = "0"
SERVER_CPU = "1"
CLIENT_SOCKETS = 16  # dnsperf -c: enough sockets for SO_REUSEPORT to spread evenly
DNS_SET: dict[str, object] = {}  # --dns-set
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(entry))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK_TCK


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """VmRSS (all resident), RssAnon (private heap) or RssFile (mapped files, shared)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory(pid: int) -> str:
    return f"RSS {rss_mb(pid):.1f} MB (anon {rss_mb(pid, 'RssAnon'):.1f}, file-backed {rss_mb(pid, 'RssFile'):.1f})"


class Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, args: list[str], log: Path, cpu: str | None = SERVER_CPU
    ) -> subprocess.Popen[bytes]:
        cmd = (["taskset", "-c", cpu] if cpu else []) + args
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)  # noqa: SIM115
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


def wait_for(predicate, timeout: float = 30, what: str = "") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise RuntimeError(f"timed out waiting for {what}")


def answers(port: int, name: str = "probe.bench.test") -> bool:
    try:
        dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=0.3)
        return True
    except Exception:  # noqa: BLE001
        return False


def dnsperf(
    port: int, datafile: Path, seconds: float, extra: list[str] | None = None
) -> dict[str, float]:
    cmd = [
        "taskset",
        "-c",
        CLIENT_CPU,
        "dnsperf",
        "-s",
        "127.0.0.1",
        "-p",
        str(port),
        "-d",
        str(datafile),
    ]
    cmd += ["-l", str(seconds), "-q", "200", "-c", str(CLIENT_SOCKETS)] + (extra or [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    found = {
        "completed": float(re.search(r"Queries completed:\s+(\d+)", out).group(1)),  # type: ignore[union-attr]
        "lost": float(re.search(r"Queries lost:\s+(\d+)", out).group(1)),  # type: ignore[union-attr]
        "qps": float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "avg_ms": float(re.search(r"Average Latency \(s\):\s+([\d.]+)", out).group(1)) * 1000,  # type: ignore[union-attr]
    }
    return found


def cpu_busy_seconds(cpu: str) -> float:
    """Busy time of one CPU (all processes), to see what else ran on the server's CPU."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:]]
            return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK  # minus idle and iowait
    return 0.0


def answers_by_worker(state_dir: Path) -> list[int]:
    """Queries each worker answered, from the files the supervisor sums for /metrics."""
    return [
        sum(json.loads(path.read_text())["queries"].values())
        for path in sorted((state_dir / "metrics").glob("worker-*.json"))
    ]


def context_switches(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def quartiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4)
    return f"{q[0]:.3f}-{q[2]:.3f}"


def measure(
    label: str, port: int, pids: list[int], datafile: Path, seconds: float, quiet: bool = False
) -> dict[str, float]:
    before = cpu_seconds(pids)
    busy_before = cpu_busy_seconds(SERVER_CPU)
    started = time.monotonic()
    result = dnsperf(port, datafile, seconds)
    used = cpu_seconds(pids) - before
    other = (cpu_busy_seconds(SERVER_CPU) - busy_before - used) / (time.monotonic() - started)
    result["us_per_query"] = (
        used / result["completed"] * 1e6 if result["completed"] else float("nan")
    )
    result["cpu_s"] = used
    if quiet:
        return result
    print(
        f"  {label:<38} {result['qps']:>9,.0f} qps  {result['us_per_query']:6.2f} µs CPU/query  "
        f"avg {result['avg_ms']:.2f} ms  lost {int(result['lost'])}  "
        f"(other load on CPU {SERVER_CPU}: {max(other, 0):.0%})",
        flush=True,
    )
    return result


def latency(port: int, datafile: Path, seconds: float, rate: int | None) -> str:
    """p50/p99/max from dnsperf -v; a first run at the same rate is discarded
    (dnsperf's own start-up burst shows as tens of ms otherwise)."""
    cmd = [
        "taskset",
        "-c",
        CLIENT_CPU,
        "dnsperf",
        "-s",
        "127.0.0.1",
        "-p",
        str(port),
        "-d",
        str(datafile),
    ]
    cmd += ["-v", "-q", "100"] + (["-Q", str(rate)] if rate else [])
    subprocess.run(cmd + ["-l", "1"], capture_output=True, timeout=30)
    out = subprocess.run(
        cmd + ["-l", str(seconds)], capture_output=True, text=True, timeout=seconds + 30
    ).stdout
    lat = sorted(float(m) for m in re.findall(r"^> \S+ .* ([\d.]+)$", out, re.M))
    if not lat:
        return "n/a"
    pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1000  # noqa: E731
    return f"p50 {pct(0.5):.2f} ms, p99 {pct(0.99):.2f} ms, max {lat[-1] * 1000:.1f} ms"


def write_queries(path: Path, names: list[str]) -> Path:
    path.write_text("".join(f"{n} A\n" for n in names))
    return path


def start_dns_filter(procs: Procs, tmp: Path, name: str, auth_port: int, **overrides: object):  # noqa: ANN201
    port = free_port()
    settings = {
        "listen_address": "127.0.0.1",
        "listen_port": port,
        "upstreams": [f"127.0.0.1:{auth_port}"],
        "served_networks": ["127.0.0.0/8"],
        "default_categories": ["synthetic", "doh"],
        "rate_limit_qps": 0,
        "metrics_port": 0,
        "state_dir": str(tmp / f"state-{name}"),
        "blocklist_dir": str(tmp / "bl-1m"),
        "database_url": f"sqlite://{tmp / 'policy.db'}",
        "poll_interval_s": 0.2,
        **DNS_SET,
    }
    settings.update(overrides)
    cfg = tmp / f"{name}.json"
    cfg.write_text(json.dumps(settings))
    log = tmp / f"{name}.log"
    started = time.monotonic()
    proc = procs.start(
        [PY, "-m", "dns_filter", "--config-json", str(cfg), "--log-level", "INFO"], log
    )
    workers = int(overrides.get("workers", 1))  # type: ignore[call-overload]
    wait_for(lambda: log.read_text().count("READY") >= workers, what=f"{name} READY")
    ready_s = time.monotonic() - started
    wait_for(lambda: answers(port), what=f"{name} answering")
    opened = re.findall(r"opened in ([\d.]+) ms", log.read_text())
    return proc, port, ready_s, (float(opened[0]) if opened else float("nan")), log


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--domains", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=12, help="rounds of 1 vs 2 workers (>= 2)")
    parser.add_argument("--pair-seconds", type=float, default=1.5)
    parser.add_argument("--dns-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a dns_filter setting for every server this run starts (A/B)")
    args = parser.parse_args()
    DNS_SET.update(settings_mod.assignments(args.dns_set))
    for binary in ("dnsperf", "unbound", "dnsmasq", "taskset"):
        if not shutil.which(binary) and not os.path.exists(f"/usr/sbin/{binary}"):
            sys.exit(f"needs {binary}")
    tmp = Path(tempfile.mkdtemp(prefix="ispedge-dns-bench-"))
    procs = Procs()
    rng = random.Random(7)
    try:
        print(
            f"dns_filter benchmark ({os.cpu_count()} CPUs; dnsperf on CPU {CLIENT_CPU}, servers on CPU {SERVER_CPU}; "
            f"UDP bursts: {'recvmmsg/sendmmsg (dns_filter._mmsg)' if udp._mmsg else 'recvfrom/sendto (no C module)'})"
        )
        # --- a synthetic 1M-domain category -------------------------------------------
        names = [
            f"{''.join(rng.choices(string.ascii_lowercase, k=9))}{i}.bench-block.example"
            for i in range(args.domains)
        ]
        source = tmp / "synthetic.txt"
        source.write_text("\n".join(names) + "\n")
        t0 = time.perf_counter()
        report = update(
            BlocklistSettings(blocklist_dir=tmp / "bl-1m", sources={"synthetic": [str(source)]})
        )
        build_s = time.perf_counter() - t0
        gen = tmp / "bl-1m" / "current"
        files_mb = sum(p.stat().st_size for p in gen.resolve().iterdir()) / 1e6
        update(BlocklistSettings(blocklist_dir=tmp / "bl-small"))
        print(
            f"blocklist: {report.counts['synthetic']:,} synthetic domains; updater parse+build {build_s:.2f} s; files {files_mb:.1f} MB"
        )

        db = sqlite3.connect(tmp / "policy.db")
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(
            "CREATE TABLE dns_policy (address TEXT, username TEXT, categories TEXT);"
            "CREATE TABLE change_journal (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TIMESTAMP, username TEXT, kind TEXT, payload TEXT);"
        )
        db.executemany(
            "INSERT INTO dns_policy VALUES (?, ?, '')",
            [(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", f"sub{i}") for i in range(10000)],
        )
        db.commit()

        auth_port = free_port()
        auth = procs.start(
            [PY, str(ROOT / "tests/dns/authserver.py"), "--port", str(auth_port)],
            tmp / "auth.log",
            cpu=CLIENT_CPU,
        )
        wait_for(lambda: answers(auth_port), what="authserver")

        cached_names = [f"c{i}.bench.test" for i in range(1000)]
        cached_file = write_queries(tmp / "cached.txt", cached_names)
        blocked_file = write_queries(tmp / "blocked.txt", rng.sample(names, 100_000))
        sub_file = write_queries(
            tmp / "sub.txt", [f"www.cdn.{n}" for n in rng.sample(names, 100_000)]
        )
        hot_file = write_queries(tmp / "hot.txt", rng.sample(names, 1000))

        # --- memory and start-up with 1M vs the small built-in store ------------------
        small, small_port, small_ready, _, _ = start_dns_filter(
            procs, tmp, "small", auth_port, blocklist_dir=str(tmp / "bl-small")
        )
        small_rss = rss_mb(small.pid)
        small_anon = rss_mb(small.pid, "RssAnon")
        small_mem = memory(small.pid)
        procs.stop(small)
        big, port, ready_s, opened_ms, log = start_dns_filter(procs, tmp, "one-worker", auth_port)
        big_rss = rss_mb(big.pid)
        print(
            f"start: ready {ready_s:.2f} s after exec with 1M domains (store mmap-open {opened_ms:.2f} ms); "
            f"built-in lists only: {small_ready:.2f} s"
        )
        print(
            f"at ready: 1M domains {memory(big.pid)}; built-in lists only {small_mem}: "
            f"delta {big_rss - small_rss:+.1f} MB (store files {files_mb:.1f} MB, mapped, shared by workers)"
        )

        # --- one worker -----------------------------------------------------------------
        dnsperf(port, cached_file, 1, ["-n", "1"])  # warm the cache through the upstream
        # then steady load before measuring: the first seconds after start ran up to
        # 20% slower per answer (measured 8.6, 7.8, 7.1 µs in three 4 s runs in a row)
        dnsperf(port, cached_file, 3)
        pids = [big.pid]
        print("dns_filter, 1 worker:")
        results = {
            "cached": measure("cached answers", port, pids, cached_file, args.seconds),
            "blocked": measure(
                "blocked (exact name, 1M list)", port, pids, blocked_file, args.seconds
            ),
            "subdomain": measure(
                "blocked (subdomain of listed name)", port, pids, sub_file, args.seconds
            ),
            "hot": measure(
                "blocked (hot set: 1,000 listed names)", port, pids, hot_file, args.seconds
            ),
        }
        private_after = rss_mb(big.pid, "RssAnon") - small_anon
        print(
            f"  after the runs: {memory(big.pid)}; delta vs built-in-only start: "
            f"{rss_mb(big.pid) - small_rss:+.1f} MB total, {private_after:+.1f} MB private "
            "(the rest is store pages touched by 200k random lookups; shared between workers)"
        )
        print(
            f"  latency, cached answers: at 20k qps {latency(port, cached_file, 3, 20000)}; "
            f"at saturation (100 outstanding) {latency(port, cached_file, 3, None)}"
        )

        # --- policy change to effect ------------------------------------------------------
        delays = []
        for trial in range(6):
            categories = "gambling" if trial % 2 == 0 else ""
            want = dns.rcode.NXDOMAIN if categories else dns.rcode.NOERROR
            db.execute("DELETE FROM dns_policy WHERE address = '127.0.0.50'")
            db.execute("INSERT INTO dns_policy VALUES ('127.0.0.50', 'benchsub', ?)", (categories,))
            db.execute(
                "INSERT INTO change_journal (created_at, username, kind, payload) VALUES (datetime('now'), 'benchsub', 'parental', '{}')"
            )
            db.commit()
            t0 = time.monotonic()
            while True:
                q = dns.message.make_query("www.bet365.com", "A")
                r = dns.query.udp(q, "127.0.0.1", port=port, source="127.0.0.50", timeout=1)
                if r.rcode() == want:
                    break
                time.sleep(0.002)
            delays.append((time.monotonic() - t0) * 1000)
        print(
            f"policy change (DB row + journal) -> answer changed: median {statistics.median(delays):.0f} ms, "
            f"max {max(delays):.0f} ms over {len(delays)} changes (poll 200 ms, 10k-row policy table)"
        )
        procs.stop(big)

        # --- the compact store variant (trie_levels=3): smaller, slower hits ---------------
        t0 = time.perf_counter()
        update(
            BlocklistSettings(
                blocklist_dir=tmp / "bl-compact",
                sources={"synthetic": [str(source)]},
                trie_levels=3,
            )
        )
        compact_build = time.perf_counter() - t0
        compact_mb = (
            sum(p.stat().st_size for p in (tmp / "bl-compact" / "current").resolve().iterdir())
            / 1e6
        )
        compact, cport, cready, _, _ = start_dns_filter(
            procs, tmp, "compact", auth_port, blocklist_dir=str(tmp / "bl-compact")
        )
        print(
            f"dns_filter, 1 worker, compact store (trie_levels=3; files {compact_mb:.1f} MB, built in {compact_build:.1f} s, ready {cready:.2f} s):"
        )
        measure("blocked (exact name, 1M list)", cport, [compact.pid], blocked_file, args.seconds)
        measure("blocked (subdomain of listed name)", cport, [compact.pid], sub_file, args.seconds)
        print(
            f"  after the runs: {memory(compact.pid)}; delta vs built-in-only start: {rss_mb(compact.pid) - small_rss:+.1f} MB"
        )
        procs.stop(compact)

        # --- two workers (SO_REUSEPORT), both on the server CPU -----------------------------
        # Two things are larger here than the difference looked for: this VM's speed
        # drifts 10-20% from one second to the next, and one server process can run
        # ~5-10% faster than an identical one for its whole life (where its memory
        # landed). So: short runs, the order rotated in each round and compared within
        # the round, fresh servers every 3 rounds, and a second one-worker server
        # measured the same way to show how far two identical servers appear apart.
        # "2off": two workers without udp_handover, both reading their own socket.
        names = ("1", "2", "2off", "1b")
        rotation = len(names)
        runs: dict[str, dict[str, list[float]]] = {name: {} for name in names}
        switches: dict[str, list[float]] = {name: [] for name in names}
        answered = {"2": [0, 0], "2off": [0, 0]}
        worker_memory = ""
        print(
            f"dns_filter, 2 workers vs 1 (SO_REUSEPORT; all pinned to CPU {SERVER_CPU}, this box has 2 cores; "
            f"{args.pairs} rounds of {args.pair_seconds:g} s runs, order rotated, fresh servers every "
            f"{rotation} rounds; 2off = 2 workers with udp_handover = false; 1b = a second one-worker server):"
        )
        for rnd in range(args.pairs):
            if rnd % rotation == 0:
                started = {
                    name: start_dns_filter(
                        procs, tmp, f"w{name}-{rnd}", auth_port,
                        workers=2 if name.startswith("2") else 1, udp_handover=name != "2off",
                    )
                    for name in names
                }
                servers = {
                    name: (port, process_tree(proc.pid) if name.startswith("2") else [proc.pid])
                    for name, (proc, port, *_rest) in started.items()
                }
                first_round = rnd
                for port, _ in servers.values():
                    dnsperf(port, cached_file, 1, ["-n", "2"])
                    dnsperf(port, blocked_file, 0.5)
            order = list(names)[rnd % rotation :] + list(names)[: rnd % rotation]
            for kind, datafile in (("cached", cached_file), ("blocked", blocked_file)):
                for name in order:
                    p, ps = servers[name]
                    before = context_switches(ps)
                    r = measure(f"{kind}, {name} worker(s)", p, ps, datafile, args.pair_seconds, quiet=True)
                    switches[name].append((context_switches(ps) - before) / args.pair_seconds)
                    runs[name].setdefault(kind, []).append(r["us_per_query"])
            if rnd % rotation == rotation - 1 or rnd == args.pairs - 1:
                worker_memory = "; ".join(memory(p) for p in servers["2"][1][1:])
                for name in ("2", "2off"):
                    for index, n in enumerate(answers_by_worker(tmp / f"state-w{name}-{first_round}")):
                        answered[name][index] += n
                for proc, *_rest in started.values():
                    procs.stop(proc)
        two_vs_one: dict[str, float] = {}
        for kind in ("cached", "blocked"):
            med = {name: statistics.median(runs[name][kind]) for name in names}
            ratio = [b / a for a, b in zip(runs["1"][kind], runs["2"][kind], strict=True)]
            control = [b / a for a, b in zip(runs["1"][kind], runs["1b"][kind], strict=True)]
            off = [b / a for a, b in zip(runs["1"][kind], runs["2off"][kind], strict=True)]
            two_vs_one[kind] = statistics.median(ratio)
            print(
                f"  {kind}: median µs/query 1 worker {med['1']:.2f}, 2 workers {med['2']:.2f}, "
                f"2off {med['2off']:.2f}, 1b {med['1b']:.2f}; within a round, median (quartiles): "
                f"2 / 1 {two_vs_one[kind]:.3f}x ({quartiles(ratio)}), "
                f"2off / 1 {statistics.median(off):.3f}x ({quartiles(off)}), "
                f"1b / 1 {statistics.median(control):.3f}x ({quartiles(control)})"
            )
        print(
            "  context switches/s, median: "
            + ", ".join(f"{name} {statistics.median(v):,.0f}" for name, v in switches.items())
        )
        print("  workers: " + worker_memory)
        for name, counts in answered.items():
            total = sum(counts) or 1
            print(f"  {name}: share of queries answered by worker 0 / 1: "
                  + " / ".join(f"{n / total:.1%}" for n in counts))

        # --- unbound and dnsmasq, same upstream, cached answers -------------------------------
        ub_port = free_port()
        (tmp / "unbound.conf").write_text(
            f"""server:
  interface: 127.0.0.1
  port: {ub_port}
  num-threads: 1
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{tmp}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  msg-cache-size: 32m
  rrset-cache-size: 32m
  so-reuseport: no
remote-control:
  control-enable: no
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@{auth_port}
"""
        )
        unbound = procs.start(
            ["unbound", "-d", "-c", str(tmp / "unbound.conf")], tmp / "unbound.log"
        )
        wait_for(lambda: answers(ub_port), what="unbound")
        dnsperf(ub_port, cached_file, 1, ["-n", "1"])
        print("unbound 1 thread:")
        measure("cached answers", ub_port, [unbound.pid], cached_file, args.seconds)
        procs.stop(unbound)

        dm_port = free_port()
        dnsmasq = procs.start(
            [
                "dnsmasq",
                "-k",
                "--conf-file=/dev/null",
                f"--port={dm_port}",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                f"--server=127.0.0.1#{auth_port}",
                "--cache-size=10000",
                "--user=root",
                "--dns-forward-max=1000",
                f"--pid-file={tmp}/dnsmasq.pid",
            ],
            tmp / "dnsmasq.log",
        )
        wait_for(lambda: answers(dm_port), what="dnsmasq")
        dnsperf(dm_port, cached_file, 1, ["-n", "1"])
        print("dnsmasq:")
        dnsmasq_us = measure("cached answers", dm_port, [dnsmasq.pid], cached_file, args.seconds)[
            "us_per_query"
        ]
        procs.stop(dnsmasq)

        # The issue's 14 µs is 2x dnsmasq on its machine; this VM's speed drifts ~20%
        # between runs, so the same-run ratio is reported beside the absolute figure.
        worst = max(results[k]["us_per_query"] for k in ("cached", "blocked", "subdomain"))
        print(f"slowest of cached/blocked/subdomain: {worst:.2f} µs = {worst / dnsmasq_us:.2f}x dnsmasq's {dnsmasq_us:.2f} µs in this run")
        checks = {
            "<= 14 µs CPU/query, cached and blocked": worst <= 14,
            "<= 2x dnsmasq CPU/query in the same run, cached and blocked": worst <= 2 * dnsmasq_us,
            ">= 50,000 qps one worker (cached and blocked)": min(
                results["cached"]["qps"], results["blocked"]["qps"]
            )
            >= 50_000,
            # "lose nothing": the median within-round ratio within 5%
            "two workers on one core lose nothing against one (median µs/query ratio <= 1.05)": max(
                two_vs_one.values()
            )
            <= 1.05,
            "1M domains <= 16 MB extra RSS per worker (at ready and private after lookups)": max(
                big_rss - small_rss, private_after
            )
            <= 16,
            "ready <= 1 s after start": ready_s <= 1.0,
        }
        for name, met in checks.items():
            print(f"target {name}: {'met' if met else 'NOT met'}")
        del auth
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
