"""Real processes for the DNS tests: an authoritative server and the resolver.

Everything listens on 127.0.0.1 with kernel-chosen free ports; clients use
other 127.x.y.z source addresses (all of 127/8 is local on Linux) to play
different subscribers. Every process is killed at teardown.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.support.ports import free_port as free_port  # re-exported for tests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
AUTHSERVER = Path(__file__).with_name("authserver.py")

CONTRACT_SQLITE = """
CREATE TABLE IF NOT EXISTS dns_policy (
  address TEXT NOT NULL, username TEXT NOT NULL, categories TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS change_journal (
  id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  username TEXT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL DEFAULT '{}',
  origin TEXT NOT NULL DEFAULT 'portal');
"""
CONTRACT_POSTGRES = """
CREATE TABLE IF NOT EXISTS dns_policy (
  address TEXT NOT NULL, username TEXT NOT NULL, categories TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS change_journal (
  id BIGSERIAL PRIMARY KEY, created_at TIMESTAMPTZ DEFAULT now(),
  username TEXT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL DEFAULT '{}',
  origin TEXT NOT NULL DEFAULT 'portal');
"""


def _wait_ready(proc: subprocess.Popen[str], log_path: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "READY" in log_path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"process did not start:\n{log_path.read_text(errors='replace')}")


@dataclass
class Proc:
    proc: subprocess.Popen[str]
    port: int
    log_path: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Launcher:
    tmp: Path
    procs: list[Proc] = field(default_factory=list)

    def _start(self, args: list[str], name: str, port: int) -> Proc:
        log_path = self.tmp / f"{name}-{port}.log"
        out = open(log_path, "w")  # noqa: SIM115 - closed with the process
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT
        )
        out.close()
        p = Proc(proc, port, log_path)
        self.procs.append(p)
        _wait_ready(proc, log_path)
        return p

    def authserver(self, answer_ip: str = "192.0.2.1") -> Proc:
        port = free_port()
        return self._start(
            [PYTHON, str(AUTHSERVER), "--port", str(port), "--answer-ip", answer_ip], "auth", port
        )

    def resolver(self, upstreams: list[int], **overrides: object) -> Proc:
        port = free_port()
        settings: dict[str, object] = {
            "listen_address": "127.0.0.1",
            "listen_port": port,
            "upstreams": [f"127.0.0.1:{p}" for p in upstreams],
            "upstream_timeout_s": 0.5,
            "served_networks": ["127.0.0.0/16"],
            "default_categories": ["doh"],
            "metrics_port": free_port(),
            "state_dir": str(self.tmp / "state"),
            "blocklist_dir": str(self.tmp / "blocklists"),
            "rate_limit_qps": 0,
            "poll_interval_s": 0.1,
        }
        settings.update(overrides)
        cfg = self.tmp / f"resolver-{port}.json"
        cfg.write_text(json.dumps(settings))
        p = self._start([PYTHON, "-m", "dns_filter", "--config-json", str(cfg)], "resolver", port)
        p.metrics_port = settings["metrics_port"]  # type: ignore[attr-defined]
        return p

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launch = Launcher(tmp_path)
    try:
        yield launch
    finally:
        launch.stop_all()


def query(
    port: int,
    name: str,
    rdtype: str = "A",
    source: str = "127.0.0.1",
    tcp: bool = False,
    payload: int | None = 1232,
    timeout: float = 2.0,
) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, use_edns=payload is not None, payload=payload or 512)
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=port, source=source, timeout=timeout)
    return dns.query.udp(
        q, "127.0.0.1", port=port, source=source, timeout=timeout, ignore_trailing=True
    )


def addresses(msg: dns.message.Message) -> list[str]:
    return [
        r.to_text()
        for rrset in msg.answer
        for r in rrset
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
    ]


# One backend per pass: the SQLite pass runs these on SQLite, the PostgreSQL pass (`-m db`
# with ISPEDGE_TEST_DATABASE_URL) on PostgreSQL; running the SQLite case again in the
# second pass only repeated the first.
BACKENDS = ["postgres"] if os.environ.get("ISPEDGE_TEST_DATABASE_URL") else ["sqlite"]


@dataclass
class ContractDb:
    url: str
    execute: Callable[..., None]

    def set_policy(
        self, address: str, username: str, categories: str, journal: bool = True
    ) -> None:
        self.execute("DELETE FROM dns_policy WHERE address = ?", (address,))
        self.execute(
            "INSERT INTO dns_policy (address, username, categories) VALUES (?, ?, ?)",
            (address, username, categories),
        )
        if journal:
            self.execute(
                "INSERT INTO change_journal (username, kind, payload) VALUES (?, 'parental', '{}')",
                (username,),
            )


@pytest.fixture(params=BACKENDS)
def contract_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContractDb]:
    """The dns_policy/change_journal contract on SQLite, or on PostgreSQL when
    ISPEDGE_TEST_DATABASE_URL is set (in a schema of its own, dropped afterwards)."""
    if request.param == "sqlite":
        path = tmp_path / "contract.db"
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(CONTRACT_SQLITE)
        conn.commit()

        def execute(sql: str, params: tuple[object, ...] = ()) -> None:
            conn.execute(sql, params)
            conn.commit()

        yield ContractDb(f"sqlite://{path}", execute)
        conn.close()
        return
    import psycopg

    base = os.environ["ISPEDGE_TEST_DATABASE_URL"]
    schema = f"test_dns_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    admin = psycopg.connect(base, autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    pg = psycopg.connect(url, autocommit=True)
    pg.execute(CONTRACT_POSTGRES)

    def execute_pg(sql: str, params: tuple[object, ...] = ()) -> None:
        pg.execute(sql.replace("?", "%s"), params)

    try:
        yield ContractDb(url, execute_pg)
    finally:
        pg.close()
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()
