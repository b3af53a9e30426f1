"""`ispedge db backup` / `db restore` (issue 17): a backup taken while money is being
written restores to the same ledgers and invoices, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portal.core import subscribers
from portal.store import backup
from tests.conftest import PG_URL, _pg_admin, _with_dbname
from tests.portal import billing_helpers
from tests.support import seed
from tests.support.cli import run_main, sqlite_copy

USERS = [f"cust{i}" for i in range(6)]
# What money is: every row of the ledger, the invoices and their lines, the balances.
MONEY = {
    "wallet_entries": "SELECT * FROM wallet_entries ORDER BY id",
    "invoices": "SELECT * FROM invoices ORDER BY id",
    "invoice_lines": "SELECT * FROM invoice_lines ORDER BY id",
    "balances": "SELECT username, balance_cents FROM subscribers ORDER BY username",
}


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite://"):
        conn = sqlite3.connect(url[len("sqlite://"):])
        try:
            return list(conn.execute(sql).fetchall())
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return list(conn.execute(sql).fetchall())


def money(url: str) -> dict[str, list[tuple[Any, ...]]]:
    return {name: _rows(url, sql) for name, sql in MONEY.items()}


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    """A database to restore into: nothing in it (a new box after a disk loss)."""
    if PG_URL:
        name = f"ispedge_r_{uuid.uuid4().hex[:12]}"
        _pg_admin(PG_URL, f"CREATE DATABASE {name}")
        yield _with_dbname(PG_URL, name)
        _pg_admin(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    else:
        yield f"sqlite://{tmp_path / 'restored' / 'ispedge.db'}"


async def test_backup_while_writing_restores_identical_ledgers_and_invoices(
        db: str, empty_url: str, tmp_path: Path):
    await billing_helpers.setup_resellers()
    for u in USERS:
        await seed.subscriber(u, balance_cents=1000)
    stop, warmed = asyncio.Event(), asyncio.Event()
    written = 0

    async def writer() -> None:
        nonlocal written
        while not stop.is_set():
            for u in USERS:
                await subscribers.credit(u, 100 + written, f"ref-{written}")
                written += 1
            if written >= 12:
                warmed.set()
            await asyncio.sleep(0)

    task = asyncio.ensure_future(writer())
    await warmed.wait()
    before = written
    done = await backup.backup(db, tmp_path / "one")
    during = written - before
    stop.set()
    await task
    assert during > 0, "no write ran while the backup was taken"
    assert done.bytes > 0 and oct((tmp_path / "one").stat().st_mode)[-3:] == "640"

    await backup.restore(empty_url, tmp_path / "one")
    source, restored = money(db), money(empty_url)
    # The backup is one consistent moment: a prefix of the ledger and of the invoices,
    # with the balances of that moment (each balance is the sum of its own entries).
    for table in ("wallet_entries", "invoices", "invoice_lines"):
        got = restored[table]
        assert 0 < len(got) <= len(source[table]) and got == source[table][:len(got)], table
    sums: dict[int, int] = {}
    amount = [c for c in _columns(empty_url, "wallet_entries")].index("amount_cents")
    sub_col = _columns(empty_url, "wallet_entries").index("subscriber_id")
    for entry in restored["wallet_entries"]:
        sums[entry[sub_col]] = sums.get(entry[sub_col], 0) + entry[amount]
    balances = dict(_rows(empty_url, "SELECT id, balance_cents FROM subscribers"))
    assert balances == sums

    # Writes stopped: a second backup restored over the first is the source exactly.
    await backup.backup(db, tmp_path / "two")
    await backup.restore(empty_url, tmp_path / "two")
    assert money(empty_url) == money(db)


def _columns(url: str, table: str) -> list[str]:
    if url.startswith("sqlite://"):
        return [r[1] for r in _rows(url, f"PRAGMA table_info({table})")]
    return [r[0] for r in _rows(url, "SELECT column_name FROM information_schema.columns"
                                     f" WHERE table_name = '{table}' ORDER BY ordinal_position")]


def test_cli_backup_rotation_and_refusals(request: pytest.FixtureRequest, tmp_path: Path,
                                          monkeypatch, capsys):
    # The command's wiring, rotation and refusals (SQLite pass only: the round trip
    # above covers both databases).
    db_url = sqlite_copy(request, tmp_path)

    def cli(*args: str) -> tuple[int, str, str]:
        return run_main(monkeypatch, capsys, db_url, tmp_path, *args)

    out = tmp_path / "backups"
    code, said, err = cli("db", "backup", "--dir", str(out), "--keep", "2")
    assert code == 0 and "backup written" in said, err
    # Older ones (as the daily timer leaves them): only the newest two stay.
    for day in ("20260101", "20260102"):
        (out / f"{backup.PREFIX}{day}T000000Z{backup.suffix_for(db_url)}").write_bytes(b"x")
    (out / "unrelated.txt").write_text("kept")
    code, said, err = cli("db", "backup", "--dir", str(out), "--keep", "2")
    assert code == 0 and "older removed" in said, err
    names = sorted(os.listdir(out))
    assert len(names) == 3 and "unrelated.txt" in names  # the newest two backups, and it
    assert not any(n.startswith(f"{backup.PREFIX}20260101") for n in names)
    assert names[-2] > f"{backup.PREFIX}20260102"  # the newest: today's
    newest = out / [n for n in names if n.startswith(backup.PREFIX)][-1]
    code, said, err = cli("db", "restore", str(newest))
    assert code == 0 and "restored" in said, err
    # Not a backup: refused with one line, nothing touched.
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a database at all")
    code, said, err = cli("db", "restore", str(junk))
    assert code == 1 and err.count("\n") == 1 and "is not a" in err
    code, said, err = cli("db", "backup")
    assert code == 1 and "FILE or --dir" in err
