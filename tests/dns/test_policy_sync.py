"""The database contract (SQLite, and PostgreSQL when configured) and the policy follower."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from dns_filter.metrics import Metrics
from dns_filter.policy import PolicyRow, PolicyTable
from dns_filter.policy_db import PolicyDatabase
from dns_filter.policy_sync import PolicyFollower, read_snapshot
from tests.dns.conftest import ContractDb


def test_database_contract_queries(contract_db: ContractDb) -> None:
    contract_db.set_policy("10.0.0.5", "alice", "adult,gambling")
    contract_db.set_policy("2001:db8:1::/56", "alice", "adult", journal=False)
    contract_db.set_policy("10.0.0.6", "bob", "")
    db = PolicyDatabase(contract_db.url)
    head, rows = db.load_all()
    assert head == 2
    assert sorted(rows, key=lambda r: r.address) == [
        PolicyRow("10.0.0.5", "alice", "adult,gambling"),
        PolicyRow("10.0.0.6", "bob", ""),
        PolicyRow("2001:db8:1::/56", "alice", "adult"),
    ]
    assert {r.address for r in db.load_username("alice")} == {"10.0.0.5", "2001:db8:1::/56"}
    contract_db.execute(
        "INSERT INTO change_journal (username, kind, payload) VALUES (NULL, 'subscriber', '{}')"
    )
    assert [(u, k) for _i, u, k in db.changes_since(1)] == [
        ("bob", "parental"),
        (None, "subscriber"),
    ]
    db.close()


def test_bad_urls_are_rejected() -> None:
    with pytest.raises(ValueError):
        PolicyDatabase("mysql://x/y")


def follower_for(url: str, tmp_path: Path) -> tuple[PolicyFollower, PolicyTable]:
    table = PolicyTable()
    return PolicyFollower(url, table, tmp_path / "snap.json", Metrics(), 0.2, 10), table


def test_follower_partial_and_full_reloads(contract_db: ContractDb, tmp_path: Path) -> None:
    contract_db.set_policy("10.0.0.5", "alice", "adult")
    f, table = follower_for(contract_db.url, tmp_path)
    assert f.load_initial() == "database"
    assert table.v4 == {"10.0.0.5": {"adult"}}
    assert read_snapshot(tmp_path / "snap.json")[1] == [PolicyRow("10.0.0.5", "alice", "adult")]
    # nothing new
    assert f._work(False, f.cursor)[0] == "none"
    # a parental change for alice: only alice reloaded
    contract_db.set_policy("10.0.0.5", "alice", "gambling")
    contract_db.execute(
        "INSERT INTO dns_policy (address, username, categories) VALUES ('10.0.0.9', 'zed', 'adult')"
    )
    kind, cursor, payload = f._work(False, f.cursor)
    assert kind == "partial" and set(payload) == {"alice"}
    f._applied((kind, cursor, payload))
    assert table.v4 == {"10.0.0.5": {"gambling"}}
    # an unrelated kind moves the cursor but reloads nobody
    contract_db.execute(
        "INSERT INTO change_journal (username, kind, payload) VALUES ('zed', 'invoice', '{}')"
    )
    kind, cursor, payload = f._work(False, f.cursor)
    assert kind == "partial" and payload == {}
    f._applied((kind, cursor, payload))
    # NULL username means everything
    contract_db.execute(
        "INSERT INTO change_journal (username, kind, payload) VALUES (NULL, 'session', '{}')"
    )
    result = f._work(False, f.cursor)
    assert result[0] == "full"
    f._applied(result)
    assert table.v4 == {"10.0.0.5": {"gambling"}, "10.0.0.9": {"adult"}}
    assert f.cursor is not None and f.cursor.high == result[1]


def test_start_without_database_uses_snapshot_and_says_so(
    contract_db: ContractDb, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    contract_db.set_policy("10.0.0.5", "alice", "adult")
    first, _ = follower_for(contract_db.url, tmp_path)
    first.load_initial()
    second, table = follower_for(f"sqlite://{tmp_path}/nope/missing.db", tmp_path)
    with caplog.at_level(logging.WARNING):
        assert second.load_initial() == "snapshot"
    assert "DATABASE UNAVAILABLE" in caplog.text
    assert table.v4 == {"10.0.0.5": {"adult"}}


def test_no_database_and_no_snapshot_serves_defaults(tmp_path: Path) -> None:
    f, table = follower_for(f"sqlite://{tmp_path}/missing.db", tmp_path)
    assert f.load_initial() == "none"
    assert len(table) == 0


def test_failed_poll_keeps_current_policy(contract_db: ContractDb, tmp_path: Path) -> None:
    contract_db.set_policy("10.0.0.5", "alice", "adult")
    f, table = follower_for(contract_db.url, tmp_path)
    f.load_initial()
    f.busy = True
    f._failed(RuntimeError("db down"))
    assert not f.db_ok and not f.busy and table.v4 == {"10.0.0.5": {"adult"}}


def test_snapshot_is_written_atomically(tmp_path: Path) -> None:
    from dns_filter.policy_sync import write_snapshot

    write_snapshot(tmp_path / "s.json", [PolicyRow("10.0.0.1", "a", "adult")], 7)
    raw = json.loads((tmp_path / "s.json").read_text())
    assert raw["cursor"] == 7 and raw["rows"] == [["10.0.0.1", "a", "adult"]]
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_unchanged_full_reload_rebuilds_nothing_but_partial_forces_next_rebuild(
    contract_db: ContractDb, tmp_path: Path
) -> None:
    contract_db.set_policy("10.0.0.5", "alice", "adult")
    f, table = follower_for(contract_db.url, tmp_path)
    f.load_initial()
    version = table.version
    result = f._work(True, f.cursor)
    assert result[0] == "same"
    f._applied(result)
    assert table.version == version
    contract_db.set_policy("10.0.0.5", "alice", "gambling")
    f._applied(f._work(False, f.cursor))
    # back to the old rows without a journal row (a radacct session change): still rebuilt
    contract_db.set_policy("10.0.0.5", "alice", "adult", journal=False)
    result = f._work(True, f.cursor)
    assert result[0] == "full"
    f._applied(result)
    assert table.v4 == {"10.0.0.5": {"adult"}}


def test_a_notify_during_a_poll_polls_again_and_a_failed_poll_is_retried_soon(
    contract_db: ContractDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wake contract: a NOTIFY that lands while a poll runs (its row may have
    committed after the poll read the journal) is followed by another poll as the
    poll ends, whatever the poll's own batch said; and after a failed poll the
    fallback is `poll_interval_s` again, not the longer `listen_poll_s`."""
    contract_db.set_policy("10.0.0.5", "alice", "adult")
    f, _table = follower_for(contract_db.url, tmp_path)
    f.load_initial()
    polls: list[float] = []
    monkeypatch.setattr(f, "poll", lambda: polls.append(1.0))
    f.listen_ok, f.listen_poll_s = True, 2.0
    # what poll() does on the reactor before the thread reads
    f.busy, f.more, f.read_more, f.polled_at = True, False, False, 0.0
    f.wake()  # the NOTIFY, while the thread reads
    assert polls == []  # not a second poll at the same time
    result = f._work(False, f.cursor)  # the thread: nothing new, its batch not full
    assert result[0] == "none" and not f.read_more
    f._applied(result)
    assert polls == [1.0]
    # a failed poll: the next tick polls, although a poll started just now
    polls.clear()
    f.busy, f.polled_at = True, time.monotonic()
    f._failed(RuntimeError("connection lost"))
    f._tick()
    assert polls == [1.0]
    f.db_ok = True
    f._tick()  # while NOTIFY works and the database answers: the 2 s fallback
    assert polls == [1.0]
