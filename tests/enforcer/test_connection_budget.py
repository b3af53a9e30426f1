"""The connection budget (issue 17): each daemon keeps to its pool size, and what
pg_stat_activity shows stays within README's formula, with the portal under load.

PostgreSQL pass: a real portal, enforcer and resolver; connections counted by
application_name (each daemon names its own). SQLite has no server connections and
no pool: its pass checks the pool sizes reach the PostgreSQL URL and the formula."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from portal.store import db as pdb
from portal.web.app import PORTAL_APPLICATION_NAME
from tests.dns.conftest import Launcher, launcher  # noqa: F401
from tests.support.portal import PortalServer, free_port, portal_env

PORTAL_POOL, ENFORCER_POOL = 3, 2


@pytest.fixture
def daemons(db_url: str, tmp_path: Path, launcher: Launcher  # noqa: F811
            ) -> Iterator[tuple[PortalServer, subprocess.Popen[bytes], object, str]]:
    box = f"budget-{uuid.uuid4().hex[:6]}"
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
        (tmp_path / name).mkdir()
        with (tmp_path / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "portal.main", *args], env=env,
                                    stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    # All three start at once (each takes seconds on a busy CI box).
    port = free_port()
    portal_proc = start("portal", portal_env(db_url, tmp_path / "portal",
                                             ISPEDGE_PORTAL_DB_POOL_MAX=str(PORTAL_POOL),
                                             ISPEDGE_PORTAL_RATE_LIMIT="false"),
                        "portal", "--host", "127.0.0.1", "--port", str(port))
    enforcer = start("enforcer", portal_env(db_url, tmp_path / "enforcer",
                                            ISPEDGE_GENERAL_BOX=f"{box}-e",
                                            ISPEDGE_ENFORCER_DB_POOL_MAX=str(ENFORCER_POOL)),
                     "enforcer")
    try:
        resolver = launcher.resolver([free_port()], database_url=db_url, box=f"{box}-r",
                                     heartbeat_s=0.5)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert portal_proc.poll() is None, (tmp_path / "portal.log").read_text()
            try:
                httpx.get(url + "/customer/api/branding", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "portal did not start"
                time.sleep(0.05)
        portal = PortalServer(url, db_url, tmp_path / "portal", portal_proc,
                              tmp_path / "portal.log")
        yield portal, enforcer, resolver, box
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def _load(url: str, n: int) -> None:
    """Logins (each one transaction counting the attempt) from many addresses at once."""
    async with httpx.AsyncClient(base_url=url, timeout=20) as c:
        await asyncio.gather(*[
            c.post("/customer/api/login", json={"username": f"nobody{i}", "password": "x"},
                   headers={"X-Forwarded-For": f"10.{i // 250}.{i % 250}.1"})
            for i in range(n)])


def _pg_counts(db_url: str, box: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute("SELECT application_name, count(*) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                            " GROUP BY application_name").fetchall()
    counts = {str(name): int(n) for name, n in rows}
    return {"portal": counts.get(PORTAL_APPLICATION_NAME, 0),
            "enforcer": counts.get(f"{box}-e", 0), "resolver": counts.get(f"{box}-r", 0),
            "other": sum(n for name, n in counts.items()
                         if name not in (PORTAL_APPLICATION_NAME, f"{box}-e", f"{box}-r"))}


def test_connections_stay_within_the_formula(db_url: str,
                                             request: pytest.FixtureRequest) -> None:
    budget = pdb.connection_budget(portals=1, portal_pool=PORTAL_POOL, boxes=1,
                                   enforcer_pool=ENFORCER_POOL, resolver_workers=1)
    assert budget == PORTAL_POOL + ENFORCER_POOL + 1 + 4 + pdb.CLI_CONNECTIONS
    assert "maxsize=3" in pdb._tortoise_url("postgres://u@h/db", 3)
    assert f"maxsize={pdb.PG_POOL_MAX}" in pdb._tortoise_url("postgres://u@h/db")
    if db_url.startswith("sqlite"):
        return  # no server connections to count (see the module's docstring)
    portal, enforcer, _resolver, box = request.getfixturevalue("daemons")
    worst: dict[str, int] = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the resolver's first heartbeat, the enforcer's start
        counts = _pg_counts(db_url, box)
        if counts["resolver"] >= 3 and counts["enforcer"] >= 2:
            break
        time.sleep(0.1)
    for _ in range(2):
        asyncio.run(_load(portal.url, 60))
        for k, v in _pg_counts(db_url, box).items():
            worst[k] = max(worst.get(k, 0), v)
    assert enforcer.poll() is None and portal.process.poll() is None
    print(f"connections seen (most at once): {worst}; formula: {budget}")
    assert 1 <= worst["portal"] <= PORTAL_POOL, worst
    assert 2 <= worst["enforcer"] <= ENFORCER_POOL + pdb.ENFORCER_EXTRA_CONNECTIONS, worst
    assert worst["other"] == 0, worst  # every daemon's connections say whose they are
    assert 3 <= worst["resolver"] <= pdb.RESOLVER_CONNECTIONS_PER_WORKER, worst
    assert worst["portal"] + worst["enforcer"] + worst["resolver"] <= budget
