"""The enforcer's passes against a real database (SQLite and PostgreSQL) and a NAS
emulator speaking real RADIUS over UDP on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from coa import COA_REQUEST, DISCONNECT_REQUEST, CoaClient
from coa.emulator import NasEmulator
from portal.core import subscribers, topups
from portal.enforcer.daemon import Enforcer
from portal.speed import facts
from portal.speed.rules import Policy
from portal.store import db
from portal.store.models import ChangeJournal, EnforcementState, RadReply, Subscriber
from tests.enforcer import helpers
from tests.enforcer.helpers import BASIC, BASIC_TIER1, FAST, GB, SECRET
from tests.support import forkserver
from tests.support.portal import portal_env


@pytest.fixture
async def nas(db: str) -> AsyncIterator[NasEmulator]:
    async with helpers.nas_emulator() as emulator:
        yield emulator


@pytest.fixture
async def coa() -> AsyncIterator[CoaClient]:
    async with CoaClient(timeout_s=0.2, retries=1) as client:
        yield client


def rate_limit(down: int, up: int) -> str:
    return f"{up}k/{down}k"  # Mikrotik-Rate-Limit: rx/tx from the router = up/down


def sent(nas: NasEmulator, username: str) -> list[tuple[int, str | None]]:
    out = []
    for r in nas.received:
        if r.attributes.get("User-Name") == [username]:
            value = r.attributes.get("Mikrotik-Rate-Limit")
            out.append((r.code, str(value[0]) if value else None))
    return out


async def radreply(username: str) -> list[str]:
    return [r.value for r in await RadReply.filter(username=username,
                                                   attribute="Mikrotik-Rate-Limit")]


async def test_fup_crossing_sends_tier_rate_once_and_writes_radreply_and_journal(
        nas: NasEmulator, coa: CoaClient) -> None:
    await helpers.subscribers("alice", "bob")
    await helpers.online("alice", "s-alice", "100.64.0.10")
    await helpers.online("bob", "s-bob", "100.64.0.11")
    enforcer = Enforcer(helpers.settings(), coa)

    first = await enforcer.enforce(None)
    await enforcer.settle()
    assert first.subscribers == 2 and first.sent == 2 and first.radreply_updated == 0
    assert sent(nas, "alice") == [(COA_REQUEST, rate_limit(*BASIC))]
    state = await EnforcementState.get(username="alice")
    assert (state.state, state.applied_down_kbps, state.applied_up_kbps, state.reason) == (
        "applied", *BASIC, "plan")
    assert state.target.startswith("nas:127.0.0.1") and state.attempts == 0

    # Idempotent: the same desired state again sends nothing and writes nothing.
    journal_rows = await ChangeJournal.all().count()
    again = await enforcer.enforce(None)
    await enforcer.settle()
    assert again.sent == 0 and len(nas.received) == 2
    assert await ChangeJournal.all().count() == journal_rows

    await helpers.use_bytes("alice", 101 * GB)
    crossed = await enforcer.enforce({"alice"})
    await enforcer.settle()
    assert crossed.sent == 1 and crossed.radreply_updated == 1
    assert sent(nas, "alice")[-1] == (COA_REQUEST, rate_limit(*BASIC_TIER1))
    assert sent(nas, "bob") == [(COA_REQUEST, rate_limit(*BASIC))]
    assert await radreply("alice") == [rate_limit(*BASIC_TIER1)]
    assert await radreply("bob") == [rate_limit(*BASIC)]
    row = await ChangeJournal.filter(username="alice", kind="speed").get()
    assert json.loads(row.payload) == {"reason": "fup:monthly:1", "action": "rate",
                                       "down_kbps": 2000, "up_kbps": 1000}
    assert row.origin == "enforcer"  # so the enforcer skips it when it follows the journal
    state = await EnforcementState.get(username="alice")
    assert (state.state, state.reason, state.applied_down_kbps) == ("applied", "fup:monthly:1",
                                                                    2000)


async def test_top_up_restores_plan_speed_and_bonus_matches_topups(
        nas: NasEmulator, coa: CoaClient) -> None:
    [alice] = await helpers.subscribers("alice")
    await helpers.online("alice", "s-alice", "100.64.0.10")
    await helpers.use_bytes("alice", 101 * GB)
    enforcer = Enforcer(helpers.settings(), coa)
    await enforcer.start_cursor()
    await enforcer.enforce(None)
    await enforcer.settle()
    assert sent(nas, "alice") == [(COA_REQUEST, rate_limit(*BASIC_TIER1))]

    await topups.buy_data(alice.id, 2, None, datetime.now(UTC))
    assert await enforcer.poll_journal() >= 1 and enforcer.dirty == {"alice"}
    await enforcer.enforce(enforcer.dirty)
    await enforcer.settle()
    assert sent(nas, "alice")[-1] == (COA_REQUEST, rate_limit(*BASIC))
    assert await radreply("alice") == [rate_limit(*BASIC)]
    sub = await Subscriber.get(id=alice.id)
    batched = await facts.subscriber_facts(["alice"], datetime.now(UTC), helpers_tz(), "renewal")
    assert batched["alice"].bonus_bytes == await topups.cycle_bonus_bytes(
        sub.id, sub.cycle_start) == 2 * GB


def helpers_tz():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo("UTC")


async def test_plan_change_by_the_portal_is_followed_from_the_journal(
        nas: NasEmulator, coa: CoaClient) -> None:
    await helpers.subscribers("alice")
    await helpers.online("alice", "s-alice", "100.64.0.10")
    enforcer = Enforcer(helpers.settings(), coa)
    await enforcer.start_cursor()
    await enforcer.enforce(None)
    await enforcer.settle()

    await subscribers.set_plan("alice", "Fast")
    await enforcer.poll_journal()
    report = await enforcer.enforce(enforcer.dirty)
    await enforcer.settle()
    # the portal already wrote radreply: the enforcer only sends
    assert report.sent == 1 and report.radreply_updated == 0
    assert sent(nas, "alice")[-1] == (COA_REQUEST, rate_limit(*FAST))
    # its own "speed" rows are not followed again
    await helpers.use_bytes("alice", 1)
    enforcer.dirty.clear()
    await enforcer.poll_journal()
    assert enforcer.dirty == set()


@pytest.mark.parametrize("action", ["suspend", "disconnect"])
async def test_expiry_suspends_or_disconnects(nas: NasEmulator, coa: CoaClient,
                                              action: str) -> None:
    await helpers.subscribers("alice")
    await helpers.online("alice", "s-alice", "100.64.0.10")
    enforcer = Enforcer(helpers.settings(policy=Policy(128, 64, action)), coa)
    await enforcer.enforce(None)
    await enforcer.settle()

    await Subscriber.filter(username="alice").update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1))
    report = await enforcer.enforce(None)
    await enforcer.settle()
    assert report.sent == 1 and report.radreply_updated == 1
    code, value = sent(nas, "alice")[-1]
    if action == "disconnect":
        assert code == DISCONNECT_REQUEST and value is None
    else:
        assert (code, value) == (COA_REQUEST, rate_limit(128, 64))
    # a reconnect gets the suspended speed from radreply
    assert await radreply("alice") == [rate_limit(128, 64)]
    state = await EnforcementState.get(username="alice")
    assert (state.state, state.reason, state.applied_action) == (
        "applied", "expired", "disconnect" if action == "disconnect" else "rate")


async def test_a_prepaid_next_cycle_is_started_at_expiry_without_suspending(
        nas: NasEmulator, coa: CoaClient) -> None:
    """Issue 19: renewed early, then the expiry passes: the enforcer's pass starts the
    prepaid cycle at the old expiry and the online subscriber keeps the plan's speed
    (no suspended rate sent or written, ever)."""
    from portal.core import renewal

    [alice] = await helpers.subscribers("alice")
    await helpers.online("alice", "s-alice", "100.64.0.10")
    enforcer = Enforcer(helpers.settings(policy=Policy(128, 64, "suspend")), coa)
    await enforcer.enforce(None)
    await enforcer.settle()
    now = datetime.now(UTC)
    expiry = now - timedelta(seconds=1)  # just passed, the enforcer not there yet
    await Subscriber.filter(id=alice.id).update(cycle_start=expiry - timedelta(days=30),
                                                expires_at=expiry)
    # Renewed while it still ran (two seconds ago): the next cycle, prepaid.
    result, _ = await renewal.renew(alice.id, now - timedelta(seconds=2))
    assert result["renewal"]["next_cycle_paid"] is True
    report = await enforcer.enforce(None)
    await enforcer.settle()
    after = await Subscriber.get(id=alice.id)
    assert (after.cycle_start, after.expires_at) == (expiry, expiry + timedelta(days=30))
    assert rate_limit(128, 64) not in [v for _, v in sent(nas, "alice")]
    assert report.sent == 0 and sent(nas, "alice") == [(COA_REQUEST, rate_limit(*BASIC))]
    assert await radreply("alice") == [rate_limit(*BASIC)]
    state = await EnforcementState.get(username="alice")
    assert (state.state, state.reason) == ("applied", "plan")

async def test_session_gone_is_recorded_and_not_retried(db: str, coa: CoaClient) -> None:
    emulator = NasEmulator(SECRET, sessions=set())  # knows no session: NAK 503
    port = await emulator.start()
    try:
        await helpers.add_nas("127.0.0.1", port)
        await helpers.subscribers("alice")
        await helpers.online("alice", "s-alice", "100.64.0.10")
        enforcer = Enforcer(helpers.settings(), coa)
        await enforcer.enforce(None)
        await enforcer.settle()
        state = await EnforcementState.get(username="alice")
        assert (state.state, state.attempts, state.next_retry_at) == ("failed", 1, None)
        assert "503" in state.last_error
        await asyncio.sleep(0.4)
        assert await enforcer.due_retries(datetime.now(UTC).timestamp()) == set()
        assert (await enforcer.enforce(None)).sent == 0
        assert len(emulator.received) == 1
    finally:
        emulator.close()


async def test_unanswering_nas_is_retried_with_backoff_until_it_answers(
        db: str, coa: CoaClient) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    await helpers.add_nas("127.0.0.1", port)
    await helpers.subscribers("alice")
    await helpers.online("alice", "s-alice", "100.64.0.10")
    enforcer = Enforcer(helpers.settings(), coa)
    await enforcer.enforce(None)
    await enforcer.settle()
    assert coa.stats.retransmitted >= 1 and coa.stats.timeouts >= 1
    state = await EnforcementState.get(username="alice")
    assert (state.state, state.attempts, state.applied_at) == ("retrying", 1, None)
    assert state.next_retry_at is not None and "no answer" in state.last_error
    # not due yet: nothing is sent
    assert await enforcer.due_retries(state.updated_at + 0.1) == set()

    emulator = NasEmulator(SECRET)
    await emulator.start(port=port)
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while not (due := await enforcer.due_retries(datetime.now(UTC).timestamp())):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        await enforcer.enforce(due)
        await enforcer.settle()
        state = await EnforcementState.get(username="alice")
        assert (state.state, state.attempts, state.last_error) == ("applied", 0, "")
        assert sent(emulator, "alice") == [(COA_REQUEST, rate_limit(*BASIC))]
    finally:
        emulator.close()


async def test_results_survive_a_database_outage(nas: NasEmulator, coa: CoaClient) -> None:
    await helpers.subscribers("alice")
    await helpers.online("alice", "s-alice", "100.64.0.10")
    enforcer = Enforcer(helpers.settings(), coa)
    await enforcer.enforce(None)
    while enforcer._tasks:
        await asyncio.gather(*list(enforcer._tasks))
    assert len(enforcer.results) == 1
    url = db_url_now()
    await db.close_db()
    with pytest.raises(Exception):  # noqa: B017 - any driver error: the DB is gone
        await enforcer.flush()
    assert len(enforcer.results) == 1  # kept, not dropped
    await db.open_db(url)
    assert await enforcer.flush() == 1
    assert (await EnforcementState.get(username="alice")).state == "applied"


async def test_results_are_written_in_bounded_batches(nas: NasEmulator, coa: CoaClient,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """One transaction never holds thousands of state rows (a click's enforce waits
    on its own row's lock until the batch commits)."""
    from portal.enforcer import daemon

    await helpers.subscribers("alice")
    await helpers.online("alice", "s-alice", "100.64.0.10")
    enforcer = Enforcer(helpers.settings(), coa)
    await enforcer.enforce(None)
    while enforcer._tasks:
        await asyncio.gather(*list(enforcer._tasks))
    monkeypatch.setattr(daemon, "FLUSH_BATCH", 4)
    enforcer.results = enforcer.results * 6  # as after a full reconcile's many CoAs
    assert await enforcer.flush() == 4
    assert len(enforcer.results) == 2 and not enforcer.flushed.is_set()
    assert await enforcer.flush() == 2
    assert enforcer.results == [] and enforcer.flushed.is_set()
    assert (await EnforcementState.get(username="alice")).state == "applied"


def db_url_now() -> str:
    import os

    return os.environ["_ENFORCER_TEST_DB_URL"]


@pytest.fixture(autouse=True)
def _remember_url(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_ENFORCER_TEST_DB_URL", db_url)


async def test_session_end_removes_state_and_status_cli_shows_rows(
        nas: NasEmulator, coa: CoaClient, db_url: str, tmp_path: object) -> None:
    await helpers.subscribers("alice", "bob")
    await helpers.online("alice", "s-alice", "100.64.0.10")
    await helpers.online("bob", "s-bob", "100.64.0.11")
    enforcer = Enforcer(helpers.settings(), coa)
    await enforcer.enforce(None)
    await enforcer.settle()
    await helpers.offline("s-bob")
    report = await enforcer.enforce(None)
    assert report.removed == 1
    assert [s.username for s in await EnforcementState.all()] == ["alice"]

    env = portal_env(db_url, tmp_path)  # type: ignore[arg-type]
    out = await asyncio.to_thread(forkserver.run, ["enforcer", "status", "--json"], env,
                                  timeout=60)
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert row["username"] == "alice" and row["state"] == "applied"
    assert row["desired"] == "rate 10000/5000 (plan)" and row["applied"] == "rate 10000/5000"
    assert row["attempts"] == 0 and row["last_error"] == "-"


async def test_new_session_is_picked_up_from_radacct_without_waiting(
        nas: NasEmulator, coa: CoaClient) -> None:
    await helpers.subscribers("alice")
    enforcer = Enforcer(helpers.settings(), coa)
    assert await enforcer.poll_sessions() == 0  # sets the cursor
    await helpers.online("alice", "s-alice", "100.64.0.10")
    assert await enforcer.poll_sessions() == 1 and enforcer.dirty == {"alice"}
    await enforcer.enforce(enforcer.dirty)
    await enforcer.settle()
    assert sent(nas, "alice") == [(COA_REQUEST, rate_limit(*BASIC))]


async def test_offline_subscriber_named_by_the_journal_gets_radreply_fixed(
        nas: NasEmulator, coa: CoaClient) -> None:
    """Disabled while online (suspended speed in radreply), re-activated while offline:
    the reconnect must get the plan speed again, not the suspended one."""
    await helpers.subscribers("alice")
    await helpers.online("alice", "s-alice", "100.64.0.10")
    enforcer = Enforcer(helpers.settings(), coa)
    await enforcer.start_cursor()
    await subscribers.set_status("alice", "disabled")
    await enforcer.poll_journal()
    await enforcer.enforce(enforcer.dirty)
    await enforcer.settle()
    assert await radreply("alice") == [rate_limit(128, 64)]
    assert sent(nas, "alice")[-1] == (COA_REQUEST, rate_limit(128, 64))
    await helpers.offline("s-alice")
    enforcer.dirty.clear()

    await subscribers.set_status("alice", "active")
    # The use case wrote the plan speed itself (the one speed writer, same transaction).
    assert await radreply("alice") == [rate_limit(*BASIC)]
    await enforcer.poll_journal()
    report = await enforcer.enforce(enforcer.dirty)
    await enforcer.settle()
    assert report.radreply_updated == 0 and report.sent == 0 and report.removed == 1
    assert await radreply("alice") == [rate_limit(*BASIC)]

    # A radreply left stale by a writer outside ispedge (SQL by hand, an old
    # version) is healed by the enforcer when the journal names the subscriber.
    await RadReply.filter(username="alice").update(value=rate_limit(128, 64))
    enforcer.dirty.clear()
    report = await enforcer.enforce({"alice"})
    await enforcer.settle()
    assert report.radreply_updated == 1 and report.sent == 0
    assert await radreply("alice") == [rate_limit(*BASIC)]


async def test_usage_ingest_job_marks_subscribers_whose_usage_moved(
        nas: NasEmulator, coa: CoaClient, db_url: str) -> None:
    from portal.config import load_config
    from portal.demo import simnas

    await helpers.subscribers("alice", "bob")
    now = datetime.now(UTC)
    alice = simnas.SimSession("alice", "s-alice", "127.0.0.1", "100.64.0.10")
    bob = simnas.SimSession("bob", "s-bob", "127.0.0.1", "100.64.0.11")
    await simnas.start([alice, bob], now - timedelta(minutes=5))
    config = load_config(None, {"ISPEDGE_DATABASE_URL": db_url})
    enforcer = Enforcer(helpers.settings(), coa, None, config)
    await enforcer._ingest()
    await enforcer.enforce(None)
    await enforcer.settle()
    enforcer.dirty.clear()

    alice.bytes_out = 101 * GB  # the NAS's interim update: alice is past tier 1
    bob.bytes_out = 1 * GB
    await simnas.interim([alice, bob], now)
    assert await enforcer._ingest() == 2 and enforcer.dirty == {"alice", "bob"}
    report = await enforcer.enforce(enforcer.dirty)
    await enforcer.settle()
    assert report.sent == 1
    assert sent(nas, "alice")[-1] == (COA_REQUEST, rate_limit(*BASIC_TIER1))
    assert sent(nas, "bob") == [(COA_REQUEST, rate_limit(*BASIC))]


@pytest.mark.parametrize("profile", ["mikrotik", "accel-ppp", "generic"])
async def test_batched_set_rates_writes_what_set_rate_writes(db: str, profile: str) -> None:
    from tortoise.transactions import in_transaction

    from portal.store import rate

    async with in_transaction() as tx:
        await rate.set_rate(tx, "a", 1000, 500, profile)
        await rate.set_rate(tx, "b", 1000, 500, profile)
        await RadReply.create(username="b", attribute="Framed-Pool", op=":=", value="p1",
                              using_db=tx)
    async with in_transaction() as tx:
        one = await rate.set_rate(tx, "a", 20000, 5000, profile)
    async with in_transaction() as tx:
        written = await rate.set_rates(tx, {"b": (20000, 5000), "c": (20000, 5000)},
                                       profile)
    assert written == 2 * len(one)

    async def rows(u: str) -> list[tuple[str, str, str]]:
        return sorted((r.attribute, r.op, r.value) for r in await RadReply.filter(username=u))

    assert await rows("c") == await rows("a") == sorted(one)
    assert await rows("b") == sorted([*one, ("Framed-Pool", ":=", "p1")])  # others kept


async def test_daemon_loop_keeps_the_work_of_a_failed_pass_and_retries_it(
        nas: NasEmulator, coa: CoaClient, monkeypatch: pytest.MonkeyPatch) -> None:
    await helpers.subscribers("alice")
    await helpers.online("alice", "s-alice", "100.64.0.10")
    enforcer = Enforcer(helpers.settings(reconcile_s=3600.0), coa)
    stop = asyncio.Event()
    task = asyncio.create_task(enforcer.run(stop))
    try:
        await helpers.until(lambda: helpers.state_is("alice", "applied", BASIC[0]),
                            what="start-up reconcile")
        calls = {"n": 0}
        real = facts.open_sessions

        async def flaky(usernames: set[str] | None) -> dict[str, facts.Session]:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError("database is locked")  # the database, briefly unavailable
            return await real(usernames)

        monkeypatch.setattr(facts, "open_sessions", flaky)
        await subscribers.set_plan("alice", "Fast")
        await helpers.until(lambda: helpers.state_is("alice", "applied", FAST[0]),
                            what="plan change applied after the failed pass")
        assert calls["n"] >= 2
        assert sent(nas, "alice")[-1] == (COA_REQUEST, rate_limit(*FAST))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
