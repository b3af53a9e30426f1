"""The real resolver process against a real authoritative server, queried with dig and dnspython."""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from blocklists.settings import BlocklistSettings
from blocklists.update import update
from dns_filter import cpuslice
from tests.dns.conftest import ContractDb, Launcher, addresses, query
from tests.support.requirements import need_binary


def dig(port: int, *args: str, source: str = "127.0.0.1") -> str:
    binary = need_binary("dig", "bind9-dnsutils")
    out = subprocess.run(
        [binary, "@127.0.0.1", "-p", str(port), "-b", source, "+tries=1", "+time=2", *args],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.stdout


def status(text: str) -> str:
    for line in text.splitlines():
        if "status:" in line:
            return line.split("status:")[1].split(",")[0].strip()
    raise AssertionError(f"no status in dig output:\n{text}")


@pytest.fixture
def world(launcher: Launcher, contract_db: ContractDb):  # noqa: ANN201
    contract_db.set_policy("127.0.0.2", "alice", "adult,gambling")
    contract_db.set_policy("127.0.0.3", "bob", "")
    auth = launcher.authserver()
    resolver = launcher.resolver([auth.port], database_url=contract_db.url)
    return launcher, contract_db, auth, resolver


def test_per_subscriber_blocking_by_source_address(world) -> None:  # noqa: ANN001
    _, _, _, r = world
    # alice (adult,gambling): blocked with NXDOMAIN, subdomains too
    assert status(dig(r.port, "pornhub.com", source="127.0.0.2")) == "NXDOMAIN"
    assert status(dig(r.port, "www.bet365.com", source="127.0.0.2")) == "NXDOMAIN"
    # adult implies doh
    assert status(dig(r.port, "dns.google", source="127.0.0.2")) == "NXDOMAIN"
    assert dig(r.port, "+short", "example.test", source="127.0.0.2").strip() == "192.0.2.1"
    # bob: nothing blocked, even doh (his row says '')
    assert dig(r.port, "+short", "pornhub.com", source="127.0.0.3").strip() == "192.0.2.1"
    assert dig(r.port, "+short", "dns.google", source="127.0.0.3").strip() == "192.0.2.1"
    # unknown address inside served networks: operator default (doh) only
    assert status(dig(r.port, "mozilla.cloudflare-dns.com", source="127.0.0.77")) == "NXDOMAIN"
    assert dig(r.port, "+short", "www.bet365.com", source="127.0.0.77").strip() == "192.0.2.1"


def test_blocked_answer_carries_extended_dns_error(world) -> None:  # noqa: ANN001
    _, _, _, r = world
    msg = query(r.port, "casino.bet365.com", source="127.0.0.2")
    assert msg.rcode() == dns.rcode.NXDOMAIN
    edes = [o for o in msg.options if o.otype == dns.edns.EDE]
    assert len(edes) == 1
    assert edes[0].code == 15
    assert "gambling" in edes[0].text
    # no EDNS in the query -> no OPT in the answer (RFC 6891), still blocked
    plain = query(r.port, "casino.bet365.com", source="127.0.0.2", payload=None)
    assert plain.rcode() == dns.rcode.NXDOMAIN and plain.edns < 0


def test_policy_change_in_database_reaches_dig_within_one_second(world) -> None:  # noqa: ANN001
    _, db, _, r = world
    assert dig(r.port, "+short", "www.bet365.com", source="127.0.0.3").strip() == "192.0.2.1"
    db.set_policy("127.0.0.3", "bob", "gambling")
    changed_at = time.monotonic()
    while status(dig(r.port, "www.bet365.com", source="127.0.0.3")) != "NXDOMAIN":
        assert time.monotonic() - changed_at < 1.0, "policy change not applied within 1 s"
        time.sleep(0.02)
    # and back again, plus a brand new subscriber address
    db.set_policy("127.0.0.3", "bob", "")
    db.set_policy("127.0.0.4", "carol", "social-media")
    changed_at = time.monotonic()
    while not (
        status(dig(r.port, "www.bet365.com", source="127.0.0.3")) == "NOERROR"
        and status(dig(r.port, "facebook.com", source="127.0.0.4")) == "NXDOMAIN"
    ):
        assert time.monotonic() - changed_at < 1.0
        time.sleep(0.02)


def test_refused_outside_served_networks(world) -> None:  # noqa: ANN001
    _, _, _, r = world
    assert status(dig(r.port, "example.test", source="127.1.0.1")) == "REFUSED"
    msg = query(r.port, "example.test", source="127.200.3.4", tcp=True)
    assert msg.rcode() == dns.rcode.REFUSED and not msg.answer


def test_any_is_answered_minimally_and_canary_is_nxdomain_for_everyone(world) -> None:  # noqa: ANN001
    _, _, _, r = world
    out = dig(r.port, "example.test", "ANY")
    assert "HINFO" in out and "RFC8482" in out
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.99"):
        assert status(dig(r.port, "use-application-dns.net", source=source)) == "NXDOMAIN"


def test_safesearch_cnames_for_adult_only(world) -> None:  # noqa: ANN001
    _, _, _, r = world
    out = dig(r.port, "+short", "www.google.com", source="127.0.0.2").split()
    assert out == ["forcesafesearch.google.com.", "216.239.38.120"]
    assert (
        dig(r.port, "+short", "www.youtube.com", source="127.0.0.2").split()[0]
        == "restrict.youtube.com."
    )
    assert (
        dig(r.port, "+short", "www.bing.com", source="127.0.0.2").split()[0] == "strict.bing.com."
    )
    assert (
        dig(r.port, "+short", "duckduckgo.com", source="127.0.0.2").split()[0]
        == "safe.duckduckgo.com."
    )
    assert (
        dig(r.port, "+short", "www.google.co.uk", source="127.0.0.2").split()[0]
        == "forcesafesearch.google.com."
    )
    assert dig(r.port, "+short", "mail.google.com", source="127.0.0.2").split() == ["192.0.2.1"]
    assert dig(r.port, "+short", "www.google.com", source="127.0.0.3").split() == ["192.0.2.1"]


def test_tcp_truncation_and_pipelining(world) -> None:  # noqa: ANN001
    _, _, _, r = world
    # upstream truncates at 512 over UDP; the resolver retries over TCP and gets all 20
    big = query(r.port, "big.test", "TXT", payload=4096)
    assert not big.flags & dns.flags.TC and sum(len(s) for s in big.answer) == 20
    # a client without EDNS gets TC over UDP, and the whole answer over TCP
    small = query(r.port, "big.test", "TXT", payload=None)
    assert small.flags & dns.flags.TC and not small.answer
    assert sum(len(s) for s in query(r.port, "big.test", "TXT", tcp=True).answer) == 20
    # dig retries over TCP on its own after TC
    assert dig(r.port, "+noedns", "big.test", "TXT").count("TXT\t") >= 20 or "record 19" in dig(
        r.port, "+noedns", "big.test", "TXT"
    )
    # three pipelined queries on one connection, all answered
    with socket.create_connection(("127.0.0.1", r.port), timeout=3) as s:
        wanted = {}
        payload = b""
        for i, name in enumerate(("p1.test", "pornhub.com", "p3.test")):
            m = dns.message.make_query(name, "A")
            m.id = 1000 + i
            wanted[m.id] = name
            wire = m.to_wire()
            payload += struct.pack("!H", len(wire)) + wire
        s.sendall(payload)
        got = {}
        buf = b""
        while len(got) < 3:
            buf += s.recv(4096)
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack_from("!H", buf)[0]:
                n = struct.unpack_from("!H", buf)[0]
                m = dns.message.from_wire(buf[2 : 2 + n])
                got[m.id] = m
                buf = buf[2 + n :]
        assert set(got) == set(wanted)
        assert addresses(got[1000]) == ["192.0.2.1"]


def test_metrics_endpoint(world) -> None:  # noqa: ANN001
    _, _, _, r = world
    dig(r.port, "m1.test")
    dig(r.port, "m1.test")
    dig(r.port, "pornhub.com", source="127.0.0.2")
    time.sleep(1.1)
    text = (
        urllib.request.urlopen(f"http://127.0.0.1:{r.metrics_port}/metrics", timeout=3)
        .read()
        .decode()
    )
    assert 'ispedge_dns_queries_total{result="cached"}' in text
    assert 'ispedge_dns_blocked_total{category="adult"} 1' in text
    assert "ispedge_dns_cache_hit_ratio" in text
    assert "ispedge_dns_upstream_latency_ms_bucket" in text
    assert "ispedge_dns_policy_table_size 2" in text
    assert "ispedge_dns_policy_age_seconds" in text


def test_failover_then_serve_stale(launcher: Launcher) -> None:
    first = launcher.authserver("192.0.2.1")
    second = launcher.authserver("198.51.100.1")
    r = launcher.resolver([first.port, second.port])
    assert addresses(query(r.port, "one.test")) == ["192.0.2.1"]
    assert addresses(query(r.port, "ttl1.stale.test")) == ["192.0.2.1"]
    first.stop()
    started = time.monotonic()
    assert addresses(query(r.port, "two.test", timeout=3)) == ["198.51.100.1"]
    assert time.monotonic() - started < 1.5
    # SERVFAIL from one upstream counts as failure too: the next one is asked
    second.stop()
    time.sleep(1.2)  # ttl1.stale.test has expired
    stale = query(r.port, "ttl1.stale.test", timeout=5)
    assert addresses(stale) == ["192.0.2.1"]
    assert stale.answer[0].ttl == 30
    assert [(o.code, o.text) for o in stale.options if o.otype == dns.edns.EDE] == [
        (3, "upstreams unreachable")
    ]
    failed = query(r.port, "never-seen.test", timeout=5)
    assert failed.rcode() == dns.rcode.SERVFAIL


def test_rate_limit_per_source(launcher: Launcher) -> None:
    auth = launcher.authserver()
    r = launcher.resolver([auth.port], rate_limit_qps=5, rate_limit_burst=10)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.9", 0))
    sock.settimeout(0.3)
    q = dns.message.make_query("rl.test", "A").to_wire()
    for _ in range(40):
        sock.sendto(q, ("127.0.0.1", r.port))
    answered = 0
    try:
        while True:
            sock.recv(4096)
            answered += 1
    except TimeoutError:
        pass
    sock.close()
    assert 10 <= answered <= 13
    # another subscriber is unaffected
    assert addresses(query(r.port, "rl.test", source="127.0.0.10")) == ["192.0.2.1"]


def test_starts_from_snapshot_when_database_missing(
    launcher: Launcher, contract_db: ContractDb, tmp_path: Path
) -> None:
    contract_db.set_policy("127.0.0.2", "alice", "gambling")
    auth = launcher.authserver()
    first = launcher.resolver([auth.port], database_url=contract_db.url)
    assert status(dig(first.port, "bet365.com", source="127.0.0.2")) == "NXDOMAIN"
    first.stop()
    second = launcher.resolver([auth.port], database_url=f"sqlite://{tmp_path}/gone/missing.db")
    assert "serving with the policy snapshot" in second.log()
    assert status(dig(second.port, "bet365.com", source="127.0.0.2")) == "NXDOMAIN"
    assert dig(second.port, "+short", "bet365.com", source="127.0.0.3").strip() == "192.0.2.1"


def test_blocklist_update_is_picked_up_without_dropping_queries(
    launcher: Launcher, tmp_path: Path
) -> None:
    auth = launcher.authserver()
    r = launcher.resolver([auth.port], default_categories=["gambling"], blocklist_check_s=0.2)
    assert addresses(query(r.port, "newcasino.example")) == ["192.0.2.1"]
    errors: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                query(r.port, f"h{random.randrange(10**6)}.test", timeout=1)
                query(r.port, "cached-name.test", timeout=1)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

    thread = threading.Thread(target=hammer)
    thread.start()
    extra = tmp_path / "more-gambling.txt"
    extra.write_text("newcasino.example\n")
    report = update(
        BlocklistSettings(blocklist_dir=tmp_path / "blocklists", sources={"gambling": [str(extra)]})
    )
    assert report.ok and report.changed
    deadline = time.monotonic() + 3
    while query(r.port, "www.newcasino.example").rcode() != dns.rcode.NXDOMAIN:
        assert time.monotonic() < deadline, "new blocklist generation not picked up"
        time.sleep(0.05)
    stop.set()
    thread.join()
    assert errors == []


def test_two_workers_share_the_port(launcher: Launcher) -> None:
    auth = launcher.authserver()
    r = launcher.resolver([auth.port], workers=2)
    time.sleep(0.5)  # both workers up (READY is printed by the first)
    for i in range(40):
        sock_source = f"127.0.{i // 200}.{10 + i % 200}"
        assert addresses(query(r.port, f"w{i}.test", source=sock_source)) == ["192.0.2.1"]
    time.sleep(1.2)
    text = (
        urllib.request.urlopen(f"http://127.0.0.1:{r.metrics_port}/metrics", timeout=3)
        .read()
        .decode()
    )
    assert 'ispedge_dns_queries_total{result="forwarded"} 40' in text
    # Workers sharing a core take turns in bursts (DnsSettings.cpu_scheduling) of
    # at least cpu_slice_ms where the kernel has custom slices.
    workers = children(r.proc.pid)
    assert len(workers) == 2, workers
    assert [os.sched_getscheduler(pid) for pid in workers] == [os.SCHED_BATCH] * 2
    slices = [cpuslice.get_attr(pid)[2] for pid in workers]
    if kernel_has_custom_slices():
        assert slices == [20_000_000] * 2
    else:
        assert "this kernel has no custom slices" in r.log_path.read_text()


def kernel_has_custom_slices() -> bool:
    probe = (
        "import os; from dns_filter import cpuslice; "
        "print(cpuslice.set_slice(os.SCHED_BATCH, 7.5) == 7_500_000)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], check=True)
    return out.stdout.strip() == "True"


def test_a_stopped_worker_leaves_no_query_unanswered(launcher: Launcher) -> None:
    """Its socket stays in the SO_REUSEPORT group, and the other worker serves it."""
    auth = launcher.authserver()
    r = launcher.resolver([auth.port], workers=2)
    deadline = time.monotonic() + 10
    while r.log_path.read_text().count("READY") < 2:
        assert time.monotonic() < deadline, "second worker never became ready"
        time.sleep(0.02)
    stopped = children(r.proc.pid)[0]
    os.kill(stopped, signal.SIGSTOP)
    try:
        # a new socket, so a new source port, per query: the kernel's hash sends
        # about half of them to the stopped worker's socket
        for i in range(40):
            assert addresses(query(r.port, f"s{i}.test", timeout=1.0)) == ["192.0.2.1"]
    finally:
        os.kill(stopped, signal.SIGCONT)


def worker_pids(r) -> list[int]:  # noqa: ANN001
    """Worker pids by worker index, from their READY lines (waits for all of them)."""
    deadline = time.monotonic() + 10
    while True:
        found = dict(
            re.findall(r"READY dns_filter worker (\d+) port \d+ pid (\d+)", r.log_path.read_text())
        )
        if len(found) == 2:
            return [int(found[str(i)]) for i in range(2)]
        assert time.monotonic() < deadline, "a worker never became ready"
        time.sleep(0.02)


def metric(r, name: str) -> float:  # noqa: ANN001
    text = urllib.request.urlopen(f"http://127.0.0.1:{r.metrics_port}/metrics", timeout=3).read()
    found = re.search(rf"^ispedge_dns_{name} (\S+)$", text.decode(), re.M)
    return float(found.group(1)) if found else float("nan")


def answered_by(launcher: Launcher, index: int) -> int:
    """Queries worker `index` answered, as of its last metrics dump (every second)."""
    path = launcher.tmp / "state" / "metrics" / f"worker-{index}.json"
    return sum(json.loads(path.read_text())["queries"].values())


def wait_until(check, what: str, seconds: float = 5) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.05)


def test_workers_on_one_cpu_hand_over_and_separate_again(launcher: Launcher) -> None:
    """dns_filter.handover, on the real process: the kernel's placement decides."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs 2 CPUs: the test moves a worker off its sibling's CPU")
    auth = launcher.authserver()
    r = launcher.resolver([auth.port], workers=2)
    w0, w1 = worker_pids(r)
    for pid in (w0, w1):
        os.sched_setaffinity(pid, {cpus[0]})
    wait_until(lambda: metric(r, "udp_queues_hosted") == 1, "worker 0 hosts worker 1's queue")
    time.sleep(1.2)  # worker 1's last dump is written
    parked_count = answered_by(launcher, 1)
    for i in range(40):  # fresh source ports: about half hash to worker 1's socket
        assert addresses(query(r.port, f"h{i}.test", timeout=1.0)) == ["192.0.2.1"]
    time.sleep(1.2)
    assert answered_by(launcher, 1) == parked_count  # worker 0 answered all 40
    assert answered_by(launcher, 0) >= 40

    os.sched_setaffinity(w1, {cpus[1]})
    wait_until(lambda: metric(r, "udp_queues_hosted") == 0, "worker 1 serves its queue again")
    for i in range(40):
        assert addresses(query(r.port, f"s{i}.test", timeout=1.0)) == ["192.0.2.1"]
    wait_until(lambda: answered_by(launcher, 1) > parked_count, "worker 1 answers again")


def test_a_parked_worker_takes_its_queue_back_from_a_stopped_host(launcher: Launcher) -> None:
    auth = launcher.authserver()
    r = launcher.resolver([auth.port], workers=2)
    w0, w1 = worker_pids(r)
    cpu = min(os.sched_getaffinity(0))
    for pid in (w0, w1):
        os.sched_setaffinity(pid, {cpu})
    wait_until(lambda: metric(r, "udp_queues_hosted") == 1, "worker 0 hosts worker 1's queue")
    os.kill(w0, signal.SIGSTOP)
    try:
        for i in range(40):  # worker 1 wakes within FRESH_NS + a sweep and serves both queues
            assert addresses(query(r.port, f"p{i}.test", timeout=1.0)) == ["192.0.2.1"]
    finally:
        os.kill(w0, signal.SIGCONT)


def test_udp_handover_off_keeps_both_workers_reading(launcher: Launcher) -> None:
    auth = launcher.authserver()
    r = launcher.resolver([auth.port], workers=2, udp_handover=False)
    w0, w1 = worker_pids(r)
    cpu = min(os.sched_getaffinity(0))
    for pid in (w0, w1):
        os.sched_setaffinity(pid, {cpu})
    time.sleep(0.5)  # long enough for a handover (see the test above)
    for i in range(40):
        assert addresses(query(r.port, f"o{i}.test", timeout=1.0)) == ["192.0.2.1"]
    wait_until(lambda: answered_by(launcher, 0) > 0 and answered_by(launcher, 1) > 0,
               "both workers answer")
    assert math.isnan(metric(r, "udp_queues_hosted"))  # no handover, no gauge


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.parametrize("scheduling", [{}, {"cpu_scheduling": "normal"}])
def test_one_worker_keeps_the_default_policy(
        launcher: Launcher, scheduling: dict[str, str]) -> None:
    # "auto" (the default) with one worker, and "normal": wake-up preemption kept
    auth = launcher.authserver()
    r = launcher.resolver([auth.port], **scheduling)
    assert addresses(query(r.port, "n.test")) == ["192.0.2.1"]
    assert os.sched_getscheduler(r.proc.pid) == os.SCHED_OTHER
    if kernel_has_custom_slices():
        assert cpuslice.get_attr(r.proc.pid)[2] != 20_000_000  # the kernel's own slice


def test_one_worker_runs_batch_when_told(launcher: Launcher) -> None:
    auth = launcher.authserver()
    r = launcher.resolver([auth.port], cpu_scheduling="batch")
    assert addresses(query(r.port, "n.test")) == ["192.0.2.1"]
    assert os.sched_getscheduler(r.proc.pid) == os.SCHED_BATCH
    if kernel_has_custom_slices():
        assert cpuslice.get_attr(r.proc.pid)[2] == 20_000_000


def test_garbage_packets_never_stop_the_server(launcher: Launcher) -> None:
    auth = launcher.authserver()
    r = launcher.resolver([auth.port])
    rng = random.Random(5)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    good = dns.message.make_query("fuzz.test", "A").to_wire()
    for _ in range(500):
        kind = rng.random()
        if kind < 0.4:
            packet = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        else:
            packet = bytearray(good)
            for _ in range(rng.randrange(1, 6)):
                packet[rng.randrange(len(packet))] = rng.randrange(256)
            packet = bytes(packet[: rng.randrange(1, len(packet) + 1)])
        sock.sendto(packet, ("127.0.0.1", r.port))
    sock.close()
    time.sleep(0.5)
    assert r.proc.poll() is None
    assert addresses(query(r.port, "still-alive.test")) == ["192.0.2.1"]
    assert "Traceback" not in r.log()


def test_serves_unfiltered_when_blocklist_dir_cannot_be_built(
    launcher: Launcher, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the blocklist directory should be")
    auth = launcher.authserver()
    r = launcher.resolver(
        [auth.port], blocklist_dir=str(blocker / "bl"), default_categories=["gambling"]
    )
    assert "nothing is blocked until" in r.log()
    assert addresses(query(r.port, "bet365.com")) == ["192.0.2.1"]
    # canary and REFUSED still work without a store
    assert query(r.port, "use-application-dns.net").rcode() == dns.rcode.NXDOMAIN
    assert query(r.port, "x.test", source="127.3.0.1").rcode() == dns.rcode.REFUSED


def test_dual_stack_ipv4_mapped_and_ipv6_prefix_subscribers(
    launcher: Launcher, contract_db: ContractDb
) -> None:
    contract_db.set_policy("127.0.0.2", "alice", "gambling")
    contract_db.set_policy("::1/128", "v6user", "adult")
    auth = launcher.authserver()
    r = launcher.resolver(
        [auth.port],
        listen_address="::",
        database_url=contract_db.url,
        served_networks=["127.0.0.0/16", "::1/128"],
    )
    # IPv4 clients arrive as ::ffff:127.0.0.2 on the dual-stack socket
    assert query(r.port, "bet365.com", source="127.0.0.2").rcode() == dns.rcode.NXDOMAIN
    assert addresses(query(r.port, "pornhub.com", source="127.0.0.2")) == ["192.0.2.1"]
    v6 = dns.message.make_query("pornhub.com", "A", use_edns=0)
    assert dns.query.udp(v6, "::1", port=r.port, timeout=2).rcode() == dns.rcode.NXDOMAIN
    ok = dns.query.tcp(dns.message.make_query("bet365.com", "A"), "::1", port=r.port, timeout=2)
    assert [a.to_text() for s in ok.answer for a in s] == ["192.0.2.1"]
