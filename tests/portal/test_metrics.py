"""Prometheus metrics (issue 17): the portal labels requests by route template, never
by raw path, so the series stay bounded under a path fuzzer; they are served on
their own port, not the public one. The enforcer counts CoA and passes."""

from __future__ import annotations

import random
import socket
import string
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from coa import CoaClient
from coa.emulator import NasEmulator
from portal.enforcer.daemon import Enforcer
from portal.web.metrics import METHODS, UNMATCHED
from tests.enforcer import helpers
from tests.support.cli import sqlite_copy
from tests.support.portal import PortalServer, free_port, start_portal

MARK = "zqx"  # in every fuzzed path: must never show up in a label


@pytest.fixture
def metered(request: pytest.FixtureRequest, tmp_path: Path
            ) -> Iterator[tuple[PortalServer, str]]:
    # Labels, not the database: the SQLite pass only.
    port = free_port()
    server = start_portal(sqlite_copy(request, tmp_path), tmp_path / "state",
                          ISPEDGE_PORTAL_METRICS_PORT=str(port))
    try:
        yield server, f"http://127.0.0.1:{port}/metrics"
    finally:
        server.stop()


def series(metrics_url: str) -> set[tuple[str, str, str]]:
    text = httpx.get(metrics_url, timeout=10).text
    out = set()
    for family in text_string_to_metric_families(text):
        if family.name == "ispedge_portal_request_seconds":
            for s in family.samples:
                if s.name.endswith("_count"):
                    out.add((s.labels["route"], s.labels["method"], s.labels["status"]))
    return out


def fuzz_paths(rng: random.Random, n: int) -> list[str]:
    alphabet = string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:@"
    shapes = [
        "/{r}", "/customer/{r}", "/customer/api/{r}", "/customer/api/usage/{r}/sessions",
        "/customer/api/usage/2026-01-{d:02d}{r}/sessions", "/customer/static/{r}.js",
        "/operator/api/{r}", "/customer/branding/logo/{d}{r}", "/{r}/{r}/{r}",
        "/customer/api/tickets/{d}{r}", "/.well-known/{r}", "/customer/api/login/{r}",
    ]
    paths = []
    for _ in range(n):
        r = MARK + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))
        paths.append(rng.choice(shapes).format(r=r, d=rng.randint(0, 99)))
    return paths


def raw_request(url: str, line: bytes) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass


def test_labels_stay_bounded_under_a_path_fuzzer(metered: tuple[PortalServer, str]):
    server, metrics_url = metered
    rng = random.Random(17)
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "FOO", "PROPFIND", "M" + MARK]
    with server.client() as c:
        # known routes: their templates, whatever the parameters
        assert c.get("/customer/api/usage").status_code == 401
        for day in ("2026-01-01", "2026-01-02", "x" + MARK):
            c.get(f"/customer/api/usage/{day}/sessions")
        c.get("/customer/login")
        assert c.get("/metrics").status_code == 404  # not on the public port

        def round_of(n: int) -> set[tuple[str, str, str]]:
            for path in fuzz_paths(rng, n):
                c.request(rng.choice(methods), path, content=b"{}" if rng.random() < .3
                          else None)
            for _ in range(10):
                junk = "".join(rng.choice(string.printable[:94]) for _ in range(20))
                raw_request(server.url, f"GET /{MARK}{junk.replace(' ', '')} HTTP/1.1".encode())
            return series(metrics_url)

        first = round_of(300)
        second = round_of(300)
    labels = {part for s in second for part in s}
    assert not any(MARK in label for label in labels), sorted(labels)
    assert {m for _r, m, _s in second} <= METHODS | {"OTHER"}
    routes = {r for r, _m, _s in second}
    assert UNMATCHED in routes
    assert all(r == UNMATCHED or r.startswith("/") for r in routes)
    assert ("/customer/api/usage", "GET", "401") in second
    assert any(r == "/customer/api/usage/<day:str>/sessions" for r in routes), sorted(routes)
    # Bounded: 300 more random paths and methods add no series, and there are few.
    assert second == first or len(second - first) <= 3, sorted(second - first)
    assert len(second) < 80, len(second)


async def test_enforcer_counts_coa_and_passes(db: str):
    emulator = NasEmulator(helpers.SECRET)
    port = await emulator.start()
    try:
        await helpers.add_nas("127.0.0.1", port)
        await helpers.subscribers("alice", "bob")
        await helpers.online("alice", "s-alice", "100.64.0.10")
        await helpers.online("bob", "s-bob", "100.64.0.11", nas_ip="10.255.9.9")  # no such NAS
        async with CoaClient(timeout_s=0.2, retries=1) as coa:
            enforcer = Enforcer(helpers.settings(box="metrics-box"), coa)
            await enforcer.enforce(None)
            await enforcer.settle()
            await enforcer.heartbeat()
            text = _render(enforcer)
    finally:
        emulator.close()
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for f in text_string_to_metric_families(text) for s in f.samples}
    assert values[("ispedge_enforcer_coa_sent_total", ())] == 1
    assert values[("ispedge_enforcer_coa_results_total", (("result", "acked"),))] == 1
    assert values[("ispedge_enforcer_pass_seconds_count", (("kind", "full"),))] == 1
    assert values[("ispedge_enforcer_info", (("box", "metrics-box"),))] == 1
    assert values[("ispedge_enforcer_coa_packets_total", (("event", "answered"),))] == 1
    assert ("ispedge_enforcer_journal_lag_rows", ()) in values
    assert values[("ispedge_enforcer_ingest_lag_rows", ())] >= 0


def _render(enforcer: Enforcer) -> str:
    from prometheus_client import generate_latest

    return generate_latest(enforcer.metrics.registry).decode()
