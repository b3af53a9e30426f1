"""The change journal contract (dns_filter/journal_contract.json): one declaration of
kinds, payloads, origins and followers, which the writers, the enforcer and the
resolver all take from it."""

from __future__ import annotations

import ast
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tortoise.transactions import in_transaction

from dns_filter import policy_db
from portal.enforcer import daemon
from portal.store import db as pdb
from portal.store import journal, migrations
from portal.store.models import ChangeJournal

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "portal"


# --- both sides read the same contract ----------------------------------------------


def test_the_contract_is_dns_filter_package_data_read_by_both_sides() -> None:
    on_disk = json.loads((ROOT / "dns_filter" / "journal_contract.json").read_text())
    assert policy_db.journal_contract() == on_disk
    assert journal.parse_contract(journal.contract_text()) == journal.CONTRACT
    assert set(on_disk["kinds"]) == journal.KINDS


def test_resolver_and_enforcer_follow_exactly_what_the_contract_says() -> None:
    assert policy_db.RELEVANT_KINDS == journal.CONTRACT.followed_by("resolver")
    assert daemon.FOLLOWED == journal.CONTRACT.followed_by("enforcer")
    # dns_filter's reading of the file and the portal's agree for every follower
    for follower in journal.CONTRACT.own_origins:
        assert policy_db.followed_kinds(follower) == journal.CONTRACT.followed_by(follower)
    # what each follower acts on today (a change here is a change of the contract)
    # (status and speed since issue 19: an expiry passing or a renewal changes whether
    # the subscriber's lookups land on the expired page)
    assert policy_db.RELEVANT_KINDS == {"parental", "session", "subscriber", "status", "speed"}
    assert daemon.FOLLOWED == {"subscriber", "plan", "status", "topup", "session", "speed"}
    assert journal.CONTRACT.own_origins["enforcer"] == journal.ENFORCER


def test_a_contradictory_contract_is_refused() -> None:
    doc = json.loads(journal.contract_text())
    doc["kinds"]["plan"]["origins"].append("martian")
    with pytest.raises(ValueError, match="undeclared origin"):
        journal.parse_contract(json.dumps(doc))
    doc = json.loads(journal.contract_text())
    doc["kinds"]["plan"]["payload"]["optional"].append("plan_id")
    with pytest.raises(ValueError, match="both required and optional"):
        journal.parse_contract(json.dumps(doc))


# --- every write in portal goes through the contract ------------------------------------


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr == name) or (
                    isinstance(f, ast.Name) and f.id == name):
                out.append(node)
    return out


_ORM_WRITES = {"create", "bulk_create", "get_or_create", "update_or_create"}


def _literal(node: ast.expr, where: str) -> str:
    assert isinstance(node, ast.Constant) and isinstance(node.value, str), (
        f"{where}: the journal kind must be a string literal (so this test can check it)")
    return node.value


def test_every_kind_and_payload_written_in_portal_is_in_the_contract() -> None:
    written: dict[str, list[str]] = {}
    for path in sorted(PORTAL.rglob("*.py")):
        rel = path.relative_to(ROOT)
        text = path.read_text()
        tree = ast.parse(text)
        if rel != Path("portal/store/journal.py"):
            # No way around the contract: no ORM writes, no raw INSERT.
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    f = node.func
                    assert not (isinstance(f, ast.Name) and f.id == "ChangeJournal"), rel
                    assert not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                                and f.value.id == "ChangeJournal" and f.attr in _ORM_WRITES), rel
            assert "insert into change_journal" not in text.lower(), rel
        # journal.record(tx, username, KIND, ...) and the speed writer's
        # effective.write(tx, username, now, KIND, ...), which records the row itself.
        calls = [(c, 2) for c in _calls(tree, "record")] + [
            (c, 3) for c in _calls(tree, "write")
            if isinstance(c.func, ast.Attribute) and isinstance(c.func.value, ast.Name)
            and c.func.value.id == "effective"]
        for call, at in calls:
            if len(call.args) <= at:
                continue  # not journal.record (e.g. the enforcer's own _record)
            where = f"{rel}:{call.lineno}"
            if rel == Path("portal/speed/effective.py"):
                continue  # passes its caller's kind on: checked at the callers
            kind = _literal(call.args[at], where)
            spec = journal.CONTRACT.kinds.get(kind)
            assert spec is not None, f"{where}: kind {kind!r} is not in the contract"
            keys = {k.arg for k in call.keywords
                    if k.arg not in (None, "origin", "known_bonus_bytes")}
            assert keys <= spec.required | spec.optional, f"{where}: {keys}"
            if not any(k.arg is None for k in call.keywords):  # no **payload
                assert spec.required <= keys, f"{where}: missing {spec.required - keys}"
            written.setdefault(kind, []).append(where)
        for call in _calls(tree, "Entry"):
            where = f"{rel}:{call.lineno}"
            kind = _literal(call.args[1], where)
            assert kind in journal.KINDS, f"{where}: kind {kind!r} is not in the contract"
            written.setdefault(kind, []).append(where)
    # ...and no kind is declared that nothing writes.
    assert set(written) == journal.KINDS, written


# --- record / record_many ------------------------------------------------------------------


async def rows() -> list[dict[str, object]]:
    return await pdb.fetch("SELECT username, kind, payload, origin FROM change_journal"
                           " ORDER BY id")


async def test_record_writes_the_origin_and_refuses_what_the_contract_does_not_say(db: str):
    async with in_transaction() as tx:
        await journal.record(tx, "ann", "plan", plan_id=3)
        with journal.writing_as(journal.CLI):
            await journal.record(tx, "ann", "status", status="active")
            await journal.record(tx, "ann", "wallet", origin=journal.PORTAL, balance_cents=5)
    assert await rows() == [
        {"username": "ann", "kind": "plan", "payload": '{"plan_id": 3}', "origin": "portal"},
        {"username": "ann", "kind": "status", "payload": '{"status": "active"}',
         "origin": "cli"},
        {"username": "ann", "kind": "wallet", "payload": '{"balance_cents": 5}',
         "origin": "portal"},
    ]
    bad = [
        (("invoice",), {}, "unknown journal kind 'invoice'"),
        (("plan",), {"plan_id": 1, "colour": "red"}, "unknown payload keys colour"),
        (("plan",), {"down_kbps": 1}, "missing payload keys plan_id"),
        (("plan",), {"plan_id": 1, "origin": "enforcer"}, "not written by origin 'enforcer'"),
        (("session",), {"event": "start", "acctuniqueid": "u", "framed_ip": ""},
         "not written by origin 'portal'"),
    ]
    for args, payload, message in bad:
        with pytest.raises(ValueError, match=message):
            async with in_transaction() as tx:
                await journal.record(tx, "ann", *args, **payload)
    with pytest.raises(ValueError, match="unknown journal origin"):
        with journal.writing_as("martian"):
            pass
    assert len(await rows()) == 3


async def test_record_many_is_one_checked_batch_like_the_orm_rows(db: str):
    sessions = [journal.Entry(f"u{i}", "session", {"event": "start", "acctuniqueid": f"a{i}",
                                                   "framed_ip": f"10.0.0.{i}"})
                for i in range(3)]
    async with in_transaction() as tx:
        assert await journal.record_many(tx, sessions, origin=journal.INGEST) == 3
        assert await journal.record_many(tx, [], origin=journal.INGEST) == 0
        await journal.record(tx, "u0", "plan", plan_id=1)
    got = await ChangeJournal.all().order_by("id")
    assert [(j.username, j.kind, j.origin) for j in got] == [
        ("u0", "session", "ingest"), ("u1", "session", "ingest"), ("u2", "session", "ingest"),
        ("u0", "plan", "portal")]
    assert json.loads(got[1].payload) == {"acctuniqueid": "a1", "event": "start",
                                          "framed_ip": "10.0.0.1"}
    assert got[0].payload == json.dumps(json.loads(got[0].payload), sort_keys=True)
    # created_at is stored as the model stores it (read back as an aware datetime)
    assert isinstance(got[0].created_at, datetime) and got[0].created_at.tzinfo is not None
    assert abs((got[3].created_at - got[0].created_at).total_seconds()) < 5

    # One bad row: nothing of the batch is written.
    with pytest.raises(ValueError, match="unknown payload keys source"):
        async with in_transaction() as tx:
            await journal.record_many(tx, [
                journal.Entry("u9", "speed", {"reason": "plan", "action": "rate",
                                              "down_kbps": 1, "up_kbps": 1}),
                journal.Entry("u9", "speed", {"reason": "plan", "action": "rate",
                                              "down_kbps": 1, "up_kbps": 1,
                                              "source": "enforcer"}),
            ], origin=journal.ENFORCER)
    assert await ChangeJournal.all().count() == 4


async def test_enforcer_skips_its_own_rows_by_origin_not_by_payload(db: str):
    from tests.enforcer import helpers

    enforcer = daemon.Enforcer(helpers.settings(), None)  # type: ignore[arg-type]
    await enforcer.start_cursor()
    insert = ("INSERT INTO change_journal (created_at, username, kind, payload, origin)"
              " VALUES (?, ?, ?, ?, ?)")
    now = datetime.now(UTC)
    # Written past the contract on purpose: only the origin column may decide.
    await pdb.execute(insert, [now, "own", "speed", "{}", "enforcer"])
    await pdb.execute(insert, [now, "mine-too", "plan", '{"plan_id": 1}', "enforcer"])
    await pdb.execute(insert, [now, "portal", "speed", '{"source": "enforcer"}', "portal"])
    await pdb.execute(insert, [now, "cli", "status", '{"status": "active"}', "cli"])
    await pdb.execute(insert, [now, "wallet", "wallet", '{"balance_cents": 1}', "cli"])
    assert await enforcer.poll_journal() == 5
    assert enforcer.dirty == {"portal", "cli"}


# --- the column -----------------------------------------------------------------------


async def test_change_journal_has_the_contract_columns(db: str):
    if pdb.current_dialect() == "sqlite":
        cols = {r["name"] for r in await pdb.fetch("PRAGMA table_info(change_journal)")}
    else:
        cols = {r["column_name"] for r in await pdb.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
            ["change_journal"])}
    assert cols == set(journal.CONTRACT.columns)
    # a row written without an origin (FreeRADIUS-era tools, old code) says 'portal'
    await pdb.execute("INSERT INTO change_journal (created_at, username, kind, payload)"
                      " VALUES (?, NULL, 'parental', '{}')", [datetime.now(UTC)])
    assert [r["origin"] for r in await rows()] == ["portal"]


@pytest.fixture
def empty_db_url(tmp_path: Path) -> Iterator[str]:
    from tests.conftest import PG_URL, _pg_admin, _with_dbname

    if not PG_URL:
        yield f"sqlite://{tmp_path / 'old.db'}"
        return
    name = f"ispedge_j_{uuid.uuid4().hex[:12]}"
    _pg_admin(PG_URL, f"CREATE DATABASE {name}")
    yield _with_dbname(PG_URL, name)
    _pg_admin(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.db
async def test_migration_0010_gives_the_rows_written_before_their_origin(
        empty_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await pdb.open_db(empty_db_url)
    try:
        every = migrations.available
        monkeypatch.setattr(migrations, "available",
                            lambda dialect: [m for m in every(dialect) if m.name < "0010"])
        await migrations.upgrade()
        old = [("ann", "plan", '{"plan_id": 1}'),
               ("ann", "session", '{"acctuniqueid": "a", "event": "start", "framed_ip": ""}'),
               ("ann", "speed", '{"action": "rate", "down_kbps": 1, "reason": "fup:daily:1",'
                                ' "source": "enforcer", "up_kbps": 1}'),
               (None, "parental", '{"reseller": "acme"}')]
        for username, kind, payload in old:
            await pdb.execute("INSERT INTO change_journal (created_at, username, kind, payload)"
                              " VALUES (?, ?, ?, ?)", [datetime.now(UTC), username, kind, payload])
        monkeypatch.undo()
        assert "0010_journal_origin" in await migrations.upgrade()
        assert [(r["kind"], r["origin"]) for r in await rows()] == [
            ("plan", "portal"), ("session", "ingest"), ("speed", "enforcer"),
            ("parental", "portal")]
    finally:
        await pdb.close_db()
