"""The block log: batching rules, and the real resolver writing it to the database.

The process test creates the tables from the portal's migration 0006 files on
the dns contract database, so the contract documented in dns_filter/README.md
and the schema the portal reads are the same thing.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from dns_filter.block_log import BlockLog, BlockLogDatabase, UsernameIndex, summarize
from dns_filter.metrics import Metrics
from dns_filter.policy import PolicyRow, PolicyTable
from tests.dns.conftest import ContractDb, Launcher
from tests.dns.test_resolver_process import dig, status

MIGRATIONS = Path(__file__).resolve().parents[2] / "portal" / "store" / "migrations" / "sql"


def _log(max_recent: int = 20_000) -> BlockLog:
    table = PolicyTable()
    table.replace_all([PolicyRow("10.0.0.1", "alice", "gambling,adult"),
                       PolicyRow("10.0.0.2", "bob", "social-media")])
    return BlockLog(None, table, Metrics(), max_recent=max_recent)


def test_a_batch_counts_per_day_and_keeps_one_recent_row_per_domain() -> None:
    at = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC).timestamp()
    blocks = _log()
    blocks.add("10.0.0.1", "bet365.com", "gambling")
    blocks.add("10.0.0.1", "bet365.com", "gambling")
    blocks.add("10.0.0.1", "pornhub.com", "adult")
    blocks.add("10.0.0.2", "facebook.com", "social-media")
    blocks.add("10.9.9.9", "bet365.com", "gambling")  # no subscriber: not logged
    batch = blocks._take(at)
    assert batch.daily == {
        ("alice", "2026-03-01", "gambling"): 2,
        ("alice", "2026-03-01", "adult"): 1,
        ("bob", "2026-03-01", "social-media"): 1,
    }
    assert batch.recent == {
        ("alice", "bet365.com"): "gambling",
        ("alice", "pornhub.com"): "adult",
        ("bob", "facebook.com"): "social-media",
    }
    assert blocks._take(at).daily == {}  # taken once: the next batch starts empty
    assert summarize({}, {}, {}, at).daily == {}


def test_a_flood_of_random_names_keeps_exact_counts_in_bounded_memory() -> None:
    blocks = _log(max_recent=100)
    for i in range(5000):
        blocks.add("10.0.0.1", f"r{i}.casino.example", "gambling")
    assert len(blocks.recent) == 100  # the recent list stops growing...
    assert blocks.dropped == 4900  # ...and says how many domains it did not keep
    batch = blocks._take(time.time())
    assert sum(batch.daily.values()) == 5000  # while every block is still counted
    assert len(batch.recent) == 100
    blocks.add("10.0.0.1", "again.casino.example", "gambling")
    assert len(blocks.recent) == 1  # a new batch has room again


def test_username_index_follows_table_changes_and_ipv6_prefixes() -> None:
    table = PolicyTable()
    table.replace_all([PolicyRow("10.0.0.1", "alice", "adult"),
                       PolicyRow("2001:db8:1::/56", "bob", ""),
                       PolicyRow("2001:db8:1:10::/64", "carol", "")])
    index = UsernameIndex(table)
    assert index.lookup("10.0.0.1") == "alice"
    assert index.lookup("::ffff:10.0.0.1") == "alice"
    assert index.lookup("2001:db8:1:ff::5") == "bob"
    assert index.lookup("2001:db8:1:10::5") == "carol"  # longest prefix wins
    assert index.lookup("10.0.0.2") == ""
    assert index.lookup("garbage") == ""
    table.replace_username("alice", [PolicyRow("10.0.0.7", "alice", "adult")])
    assert index.lookup("10.0.0.1") == ""
    assert index.lookup("10.0.0.7") == "alice"


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(ValueError):
        BlockLogDatabase("mysql://x/y")


def _create_block_tables(db: ContractDb) -> None:
    dialect = "sqlite" if db.url.startswith("sqlite") else "postgres"
    script = (MIGRATIONS / f"0006_parental.{dialect}.sql").read_text()
    body = "\n".join(line for line in script.splitlines() if not line.startswith("--"))
    for statement in body.split(";"):
        if statement.strip():
            db.execute(statement)


def _rows(db: ContractDb, sql: str) -> list[tuple[object, ...]]:
    if db.url.startswith("sqlite"):
        with sqlite3.connect(db.url[len("sqlite://"):]) as conn:
            return list(conn.execute(sql).fetchall())
    with psycopg.connect(db.url) as conn:
        return list(conn.execute(sql).fetchall())


def test_resolver_writes_blocks_within_a_second_and_prunes_old_rows(
    launcher: Launcher, contract_db: ContractDb
) -> None:
    _create_block_tables(contract_db)
    old = time.time() - 8 * 86400
    contract_db.execute(
        "INSERT INTO dns_block_recent (username, domain, category, blocked_at)"
        " VALUES ('alice', 'old.example', 'adult', ?)", (old,))
    contract_db.execute(
        "INSERT INTO dns_block_daily (username, day, category, count) VALUES ('alice', ?,"
        " 'adult', 5)", (datetime.fromtimestamp(old, UTC).date().isoformat(),))
    contract_db.set_policy("127.0.0.2", "alice", "adult,gambling")
    contract_db.set_policy("127.0.0.3", "bob", "")
    auth = launcher.authserver()
    r = launcher.resolver([auth.port], database_url=contract_db.url)
    for _ in range(3):
        assert status(dig(r.port, "www.bet365.com", source="127.0.0.2")) == "NXDOMAIN"
    assert status(dig(r.port, "pornhub.com", source="127.0.0.2")) == "NXDOMAIN"
    assert status(dig(r.port, "pornhub.com", source="127.0.0.3")) == "NOERROR"  # bob: no block
    # an address with no subscriber (default categories: doh) is blocked but not logged
    assert status(dig(r.port, "dns.google", source="127.0.0.77")) == "NXDOMAIN"
    sent = time.monotonic()
    today = datetime.now(UTC).date().isoformat()
    want = {("alice", today, "gambling", 3), ("alice", today, "adult", 1)}
    while set(_rows(contract_db, "SELECT username, day, category, count FROM dns_block_daily")
              ) != want:
        assert time.monotonic() - sent < 2.0, _rows(contract_db, "SELECT * FROM dns_block_daily")
        time.sleep(0.05)
    recent = _rows(contract_db, "SELECT username, domain, category, blocked_at"
                                " FROM dns_block_recent ORDER BY domain")
    assert [(u, d, c) for u, d, c, _ in recent] == [
        ("alice", "pornhub.com", "adult"), ("alice", "www.bet365.com", "gambling")]
    assert all(abs(float(at) - time.time()) < 5 for *_, at in recent)
    # counts add up across batches (upsert), in the same day row
    assert status(dig(r.port, "casino.bet365.com", source="127.0.0.2")) == "NXDOMAIN"
    deadline = time.monotonic() + 2
    while (("alice", today, "gambling", 4) not in set(
            _rows(contract_db, "SELECT username, day, category, count FROM dns_block_daily"))):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "block log: write failed" not in r.log()
    # a block just before SIGTERM is written at shutdown, not lost
    assert status(dig(r.port, "stop.bet365.com", source="127.0.0.2")) == "NXDOMAIN"
    r.stop()
    assert r.proc.returncode == 0, r.log()
    assert ("alice", "stop.bet365.com") in {
        (u, d) for u, d in _rows(contract_db, "SELECT username, domain FROM dns_block_recent")}


def test_resolver_keeps_answering_when_the_block_log_cannot_be_written(
    launcher: Launcher, contract_db: ContractDb
) -> None:
    # No block tables at all: every write fails, blocking goes on, the failure is logged once.
    contract_db.set_policy("127.0.0.2", "alice", "gambling")
    auth = launcher.authserver()
    r = launcher.resolver([auth.port], database_url=contract_db.url)
    for _ in range(3):
        assert status(dig(r.port, "www.bet365.com", source="127.0.0.2")) == "NXDOMAIN"
        time.sleep(0.6)
    assert r.log().count("block log: write failed") == 1, r.log()
    assert dig(r.port, "+short", "example.test", source="127.0.0.2").strip() == "192.0.2.1"
