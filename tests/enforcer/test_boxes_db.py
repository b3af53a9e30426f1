"""Two edge boxes on one database (issue 16): each box sends CoA only for the
sessions on its NASes, shapes only its own networks, keeps its own state rows,
and what no box owns shows in `ispedge enforcer status --problems`.

Real components: SQLite and PostgreSQL (the `db` fixture), two enforcers with
their own CoA clients (their own UDP sockets), NAS emulators speaking RADIUS on
loopback addresses, and for the shaper test real HTB classes in a network
namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from coa import COA_REQUEST, CoaClient
from coa.emulator import NasEmulator
from portal.core import subscribers
from portal.enforcer.daemon import Enforcer
from portal.enforcer.local import LocalShaper
from portal.enforcer.ownership import parse_networks
from portal.store import boxes, db, radacct
from portal.store.models import EnforcementState
from tests.enforcer import helpers
from tests.enforcer.helpers import BASIC, FAST, SECRET
from tests.support import forkserver
from tests.support.portal import portal_env
from tests.support.requirements import need_binary, need_root

NAS_1, NAS_2 = "127.0.0.1", "127.0.0.2"


async def nas_on(address: str, box: str | None) -> tuple[NasEmulator, int]:
    emulator = NasEmulator(SECRET)
    port = await emulator.start(address)
    await helpers.add_nas(address, port)
    await db.execute("UPDATE nas SET box = ? WHERE nasname = ?", [box, address])
    return emulator, port


def client_ports(client: CoaClient) -> set[int]:
    """The UDP source ports this box's CoA client sends from."""
    return {int(e.transport.get_extra_info("sockname")[1])
            for eps in client._endpoints.values() for e in eps if e.transport is not None}


def coas(nas: NasEmulator, username: str) -> list[tuple[int, str, int]]:
    """(code, Mikrotik-Rate-Limit, source port) of each request naming username."""
    return [(r.code, str(r.attributes.get("Mikrotik-Rate-Limit", ["-"])[0]), r.source[1])
            for r in nas.received if r.attributes.get("User-Name") == [username]]


def rate_limit(down: int, up: int) -> str:
    return f"{up}k/{down}k"


@pytest.fixture
async def two_clients(db: str) -> AsyncIterator[tuple[CoaClient, CoaClient]]:
    async with CoaClient(timeout_s=0.3, retries=1) as a, CoaClient(timeout_s=0.3,
                                                                   retries=1) as b:
        yield a, b


async def box(name: str, client: CoaClient, local: LocalShaper | None = None,
              networks: tuple[str, ...] = ()) -> Enforcer:
    enforcer = Enforcer(helpers.settings(box=name, shaped_networks=parse_networks(networks)),
                        client, local)
    await enforcer.heartbeat()
    await enforcer.start_cursor()
    return enforcer


async def both(*enforcers: Enforcer, full: bool = False) -> None:
    """One poll of each box (as their worker loops do), then their sends settle."""
    for e in enforcers:
        if full:
            await e.enforce(None)
        else:
            await e.poll_journal()
            batch, e.dirty = e.dirty, set()
            if batch:
                await e.enforce(batch)
    await asyncio.gather(*(e.settle() for e in enforcers))


async def test_each_plan_change_gives_exactly_one_coa_from_the_owning_box(
        two_clients: tuple[CoaClient, CoaClient]) -> None:
    client_1, client_2 = two_clients
    nas_1, _ = await nas_on(NAS_1, "edge-1")
    nas_2, _ = await nas_on(NAS_2, "edge-2")
    try:
        await helpers.subscribers("alice", "bob", "carol")
        await helpers.online("alice", "s-alice", "100.64.1.10", NAS_1)
        await helpers.online("bob", "s-bob", "100.64.2.11", NAS_2)
        await helpers.online("carol", "s-carol", "100.64.2.12", NAS_2)
        edge_1 = await box("edge-1", client_1)
        edge_2 = await box("edge-2", client_2)
        await both(edge_1, edge_2, full=True)
        ports_1, ports_2 = client_ports(client_1), client_ports(client_2)
        assert ports_1 and ports_2 and not ports_1 & ports_2
        assert [c[:2] for c in coas(nas_1, "alice")] == [(COA_REQUEST, rate_limit(*BASIC))]
        assert {c[2] for c in coas(nas_1, "alice")} <= ports_1
        assert len(nas_1.received) == 1 and len(nas_2.received) == 2
        assert {r.source[1] for r in nas_2.received} <= ports_2

        # 10 plan changes each for alice (edge-1) and bob (edge-2), both boxes polling
        plans = ["Fast", "Basic"] * 5
        for plan in plans:
            await subscribers.set_plan("alice", plan)
            await subscribers.set_plan("bob", plan)
            await both(edge_1, edge_2)
        expected = [rate_limit(*(FAST if p == "Fast" else BASIC)) for p in plans]
        got_alice, got_bob = coas(nas_1, "alice")[1:], coas(nas_2, "bob")[1:]
        assert [c[1] for c in got_alice] == expected  # exactly one CoA per change
        assert [c[1] for c in got_bob] == expected
        assert {c[2] for c in got_alice} <= ports_1 and {c[2] for c in got_bob} <= ports_2
        assert coas(nas_1, "bob") == [] and coas(nas_2, "alice") == []
        assert len(coas(nas_2, "carol")) == 1  # untouched
        rows = {(s.username, s.target): s.state for s in await EnforcementState.all()}
        assert rows == {("alice", f"nas:{NAS_1}"): "applied", ("bob", f"nas:{NAS_2}"): "applied",
                        ("carol", f"nas:{NAS_2}"): "applied"}
    finally:
        nas_1.close()
        nas_2.close()


async def test_a_nas_with_no_box_is_the_only_boxs_and_nobodys_among_two(
        two_clients: tuple[CoaClient, CoaClient]) -> None:
    client_1, client_2 = two_clients
    nas_1, _ = await nas_on(NAS_1, None)
    try:
        await helpers.subscribers("alice")
        await helpers.online("alice", "s-alice", "100.64.1.10", NAS_1)
        edge_1 = await box("edge-1", client_1)
        await both(edge_1, full=True)  # alone: no configuration needed
        assert [c[1] for c in coas(nas_1, "alice")] == [rate_limit(*BASIC)]

        edge_2 = await box("edge-2", client_2)  # a second box starts
        await subscribers.set_plan("alice", "Fast")
        await both(edge_1, edge_2)
        await both(edge_1, edge_2, full=True)
        assert len(coas(nas_1, "alice")) == 1  # nobody acts on an unowned NAS ...
        # ... its last row stays as it was (what the NAS last confirmed) ...
        [row] = await EnforcementState.all()
        assert (row.target, row.state, row.desired_down_kbps) == (f"nas:{NAS_1}", "applied",
                                                                  BASIC[0])
        out = await status_problems()
        assert out.returncode == 1, out.stderr  # ... and it is reported
        [problem] = json.loads(out.stdout)
        assert (problem["target"], problem["state"], problem["desired"]) == (
            f"nas:{NAS_1}", "unowned", "1 open session")
        assert "no box named and 2 boxes" in problem["last_error"]

        await db.execute("UPDATE nas SET box = 'edge-2' WHERE nasname = ?", [NAS_1])
        await both(edge_1, edge_2, full=True)
        assert [c[1] for c in coas(nas_1, "alice")][-1] == rate_limit(*FAST)
        assert len(coas(nas_1, "alice")) == 2
        assert (await status_problems()).returncode == 0
    finally:
        nas_1.close()


async def test_a_box_not_seen_for_60_s_leaves_its_nas_unowned(
        two_clients: tuple[CoaClient, CoaClient]) -> None:
    nas_2, _ = await nas_on(NAS_2, "edge-2")
    try:
        await helpers.subscribers("bob")
        await helpers.online("bob", "s-bob", "100.64.2.11", NAS_2)
        edge_1 = await box("edge-1", two_clients[0])
        await boxes.heartbeat("edge-2", boxes.ENFORCER, 1000.0, 900.0)  # long ago
        await both(edge_1, full=True)
        assert nas_2.received == []
        out = await status_problems()
        assert out.returncode == 1
        [row] = json.loads(out.stdout)
        assert row["target"] == f"nas:{NAS_2}" and row["state"] == "unowned"
        assert "edge-2 has not been seen for 60 s" in row["last_error"]
    finally:
        nas_2.close()


async def status_problems() -> subprocess.CompletedProcess[str]:
    env = portal_env(os.environ["_BOXES_TEST_DB_URL"], Path(os.environ["_BOXES_TEST_DIR"]))
    return await asyncio.to_thread(forkserver.run, ["enforcer", "status", "--problems", "--json"],
                                   env, timeout=60)


@pytest.fixture(autouse=True)
def _remember(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_BOXES_TEST_DB_URL", db_url)
    monkeypatch.setenv("_BOXES_TEST_DIR", str(tmp_path))


# --- shaping: each box shapes only its own networks (real HTB classes) -------------------


@pytest.fixture
def two_edges() -> Iterator[list[str]]:
    """Two namespaces, one per box, each with a subscriber-facing and an uplink veth."""
    need_root()
    need_binary("ip")
    names = [f"ispbox{os.getpid()}{i}" for i in (1, 2)]
    try:
        for ns in names:
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "-n", ns, "link", "add", "vd", "type", "veth", "peer", "name",
                            "vu"], check=True)
            for dev in ("vd", "vu"):
                subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        yield names
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], check=False)


def shaped_addresses(ns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "tc", "filter", "show", "dev", "vd"],
                          capture_output=True, text=True, check=True).stdout


async def test_each_box_shapes_only_its_own_networks_and_keeps_its_own_state(
        two_clients: tuple[CoaClient, CoaClient], two_edges: list[str]) -> None:
    client_1, client_2 = two_clients
    nas_1, _ = await nas_on(NAS_1, "edge-1")
    shaper_1 = LocalShaper("vd", "vu", two_edges[0])
    shaper_2 = LocalShaper("vd", "vu", two_edges[1])
    try:
        await helpers.subscribers("alice", "bob", "dave")
        # alice: on edge-1's NAS and in edge-2's network -> CoA by edge-1, shaped by edge-2
        await helpers.online("alice", "s-alice", "100.64.2.10", NAS_1)
        await helpers.online("bob", "s-bob", "100.64.1.11", "192.0.2.1")  # edge-1's network
        await helpers.online("dave", "s-dave", "100.64.2.12", "192.0.2.1")  # edge-2's network
        edge_1 = await box("edge-1", client_1, shaper_1, ("100.64.1.0/24",))
        edge_2 = await box("edge-2", client_2, shaper_2, ("100.64.2.0/24",))
        await both(edge_1, edge_2, full=True)
        assert set(edge_1.shaper_desired) == {"100.64.1.11"}
        assert set(edge_2.shaper_desired) == {"100.64.2.10", "100.64.2.12"}
        assert set(await shaper_1.counters()) == {"100.64.1.11"}  # the kernel's classes
        assert set(await shaper_2.counters()) == {"100.64.2.10", "100.64.2.12"}
        rows = {(s.username, s.target): s.state for s in await EnforcementState.all()}
        assert rows == {("alice", f"nas:{NAS_1}"): "applied",
                        ("alice", "shaper:edge-2"): "applied",
                        ("bob", "shaper:edge-1"): "applied",
                        ("dave", "shaper:edge-2"): "applied"}
        assert len(coas(nas_1, "alice")) == 1

        # Each box's passes leave the other's rows alone (before boxes, one row per
        # subscriber was rewritten by each box in turn).
        before = {(s.username, s.target): (s.updated_at, s.applied_at)
                  for s in await EnforcementState.all()}
        for _ in range(3):
            await both(edge_1, edge_2, full=True)
            await both(edge_2, edge_1, full=True)
        after = {(s.username, s.target): (s.updated_at, s.applied_at)
                 for s in await EnforcementState.all()}
        assert after == before

        # A plan change: one CoA from edge-1, one class change on edge-2, both rows applied.
        await subscribers.set_plan("alice", "Fast")
        await both(edge_1, edge_2)
        assert [c[1] for c in coas(nas_1, "alice")][-1] == rate_limit(*FAST)
        assert len(coas(nas_1, "alice")) == 2
        assert edge_2.shaper_desired["100.64.2.10"].down_kbps == FAST[0]
        states = {s.target: (s.state, s.applied_down_kbps)
                  for s in await EnforcementState.filter(username="alice")}
        assert states == {f"nas:{NAS_1}": ("applied", FAST[0]),
                          "shaper:edge-2": ("applied", FAST[0])}

        # alice leaves: each box deletes its own row of her
        await helpers.offline("s-alice")
        await both(edge_1, edge_2, full=True)
        assert not await EnforcementState.filter(username="alice").exists()
        assert set(await shaper_2.counters()) == {"100.64.2.12"}
    finally:
        nas_1.close()
        await shaper_1.close()
        await shaper_2.close()


def test_box_name_is_the_application_name_of_the_enforcers_connections() -> None:
    from dns_filter.dburl import with_application_name

    assert with_application_name("sqlite:///x.db", "edge-1") == "sqlite:///x.db"
    assert with_application_name("postgres://u:p@h:5432/db", "edge-1") == (
        "postgres://u:p@h:5432/db?application_name=edge-1")
    assert with_application_name("postgres://h/db?sslmode=disable&application_name=x",
                                 "edge 2") == (
        "postgres://h/db?sslmode=disable&application_name=edge%202")
    assert socket.gethostname()  # the default box name


async def test_stale_sessions_are_closed_by_the_box_that_owns_the_nas(db: str) -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from portal.enforcer import ownership
    from portal.usage import ingest

    await helpers.add_nas(NAS_1, 3799)
    await helpers.add_nas(NAS_2, 3799)
    await db_set_box(NAS_1, "edge-1")
    await db_set_box(NAS_2, "edge-2")
    await helpers.subscribers("alice", "bob")
    # whole seconds, as FreeRADIUS writes them
    started = datetime.now(UTC).replace(microsecond=0)
    await radacct.insert_sessions([
        radacct.AcctSession("alice", "s-alice", NAS_1, started, None, None, 0, 0, "100.64.1.10"),
        radacct.AcctSession("bob", "s-bob", NAS_2, started, None, None, 0, 0, "100.64.2.11")])
    later = started + timedelta(hours=2)  # both NASes silent for 2 h
    settings = ingest.Settings(ZoneInfo("UTC"))
    nas_boxes = await boxes.nas_boxes()
    live = frozenset({"edge-1", "edge-2"})

    def owner(me: str) -> Callable[[str], bool]:
        return lambda ip: ownership.closes_stale(ip, nas_boxes, me, live)

    first = await ingest.ingest_once(settings, later, closes_stale=owner("edge-1"))
    assert first.stale_closed == 1
    assert await open_sessions() == {"bob"}  # edge-2's NAS is edge-2's to close
    second = await ingest.ingest_once(settings, later, closes_stale=owner("edge-2"))
    assert second.stale_closed == 1 and await open_sessions() == set()


async def db_set_box(address: str, box_name: str) -> None:
    await db.execute("UPDATE nas SET box = ? WHERE nasname = ?", [box_name, address])


async def open_sessions() -> set[str]:
    return {str(r["username"]) for r in await db.fetch(
        "SELECT username FROM radacct WHERE acctstoptime IS NULL")}
