"""The enforcer daemon: database wish -> shaper classes and NAS sessions.

One worker loop follows the change journal and radacct_changes (gap-safe cursors,
bounded batches; woken by NOTIFY on PostgreSQL, else polled every ~200 ms),
picks up due retries, and runs a full reconcile on start and every minute, in
slices of at most `reconcile_slice` subscribers, sized to take about
`reconcile_slice_s` each, with the journal read between two slices
(a click never waits for a whole pass; the shaper's first reconcile is whole).
Accounting changes also wake a live usage ingest (one pass per burst,
portal.usage.coalesce) before their subscribers are enforced, so a FUP tier
crossed by an Interim-Update is on the wire within ~0.2 s; the full ingest still
runs every `ingest_s`.
Each pass reads the facts for the subscribers it looks at, computes their
desired state (rules.py), writes what changed (enforcement_state, and radreply
+ a "speed" journal row when the effective speed moved for a reason the portal
did not write) in ONE transaction, then sends: one batched shaper call and one
CoA per NAS session, all concurrently. Results are written back in batches;
a result the database could not take yet stays queued (nothing is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient

import shaper as shaper_mod
from coa import CoaClient, CoaResult, SessionRef, get_profile
from coa import Rate as CoaRate
from dns_filter import dburl, journal_prune
from dns_filter.gapcursor import GapCursor
from portal.config import Config
from portal.enforcer import ownership
from portal.enforcer.local import LocalShaper
from portal.enforcer.metrics import Metrics
from portal.enforcer.settings import Settings
from portal.speed import effective, facts, rollover, rules
from portal.store import boxes, db, follow, journal, retention
from portal.store.follow import read_batch, start_cursor
from portal.store.tx import DAEMON_BUDGET_S, transaction
from portal.usage import days, live
from portal.usage import ingest as ingest_mod
from portal.usage.coalesce import Coalescer

log = logging.getLogger("ispedge.enforcer")

# Journal kinds that can change what the network must do for a subscriber (the contract's).
FOLLOWED = journal.CONTRACT.followed_by("enforcer")

MIN_SLICE = 10  # subscribers: a slice always makes progress
NOTIFY_GAP_S = 0.05  # the worker's turns start at least this far apart
SWEEP_INFLIGHT = 128  # a full reconcile's CoAs in flight at most (a click's go at once)
FLUSH_BATCH = 500  # enforcement results written per transaction at most
SLOW_TURN_S = 1.0  # a worker turn longer than this is logged with its parts
OFFLINE_SPAN = 20  # the leader's slice looks for offline subscribers among 20 x slice
Key = tuple[str, str, str, rules.Desired]  # target, session, address, desired
Want = tuple[str, str]  # (username, target): one enforcement_state row


@dataclass
class PassReport:
    subscribers: int = 0
    sent: int = 0
    radreply_updated: int = 0
    removed: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class SweepScope:
    """What one box's full reconcile sweeps (Enforcer.sweep_scope)."""

    everyone: bool = False  # the only box: every subscriber and every state row
    nas_ips: tuple[str, ...] = ()  # its NASes: their open sessions
    shaper: bool = False  # a local shaper: every open session (its networks decide)
    targets: tuple[str, ...] = ()  # its enforcement_state targets
    offline: bool = False  # the leader: subscribers with no open session too
    live: frozenset[str] = frozenset()  # the live boxes it was read with


@dataclass
class _Result:
    username: str
    key: Key
    attempts_before: int
    outcome: rules.Outcome
    at: float = field(default_factory=time.time)


_UPSERT_STATE = (
    "INSERT INTO enforcement_state (username, target, acct_session_id, address, desired_action,"
    " desired_down_kbps, desired_up_kbps, reason, state, attempts, last_error, next_retry_at,"
    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', NULL, ?)"
    " ON CONFLICT (username, target) DO UPDATE SET target = excluded.target,"
    " acct_session_id = excluded.acct_session_id, address = excluded.address,"
    " desired_action = excluded.desired_action, desired_down_kbps = excluded.desired_down_kbps,"
    " desired_up_kbps = excluded.desired_up_kbps, reason = excluded.reason,"
    " state = excluded.state, attempts = 0, last_error = '', next_retry_at = NULL,"
    " updated_at = excluded.updated_at"
)
# Only the wish the result belongs to: a newer wish recorded meanwhile is left alone.
_RESULT = (
    "UPDATE enforcement_state SET state = ?, attempts = ?, last_error = ?, next_retry_at = ?,"
    " applied_action = CASE WHEN ? THEN ? ELSE applied_action END,"
    " applied_down_kbps = CASE WHEN ? THEN ? ELSE applied_down_kbps END,"
    " applied_up_kbps = CASE WHEN ? THEN ? ELSE applied_up_kbps END,"
    " applied_at = CASE WHEN ? THEN ? ELSE applied_at END, updated_at = ?"
    " WHERE username = ? AND target = ? AND acct_session_id = ? AND address = ?"
    " AND desired_action = ? AND desired_down_kbps = ? AND desired_up_kbps = ?"
)


class Enforcer:
    def __init__(self, settings: Settings, coa: CoaClient, local: LocalShaper | None = None,
                 config: Config | None = None) -> None:
        self.settings = settings
        self.coa = coa
        self.local = local
        self.config = config
        self.tz = days.zone(settings.timezone)
        self.cursor = GapCursor()
        self.journal_read_at = time.monotonic()  # the last successful journal read
        self.dirty: set[str] = set()
        self.wake = asyncio.Event()
        self.inflight: dict[Want, Key] = {}
        self.box = settings.box
        self.shaper_target = ownership.shaper_target(settings.box)
        self.started_at = time.time()
        self.results: list[_Result] = []
        self.flushed = asyncio.Event()
        self.shaped: dict[str, str] = {}  # canonical address -> username
        self.shaper_desired: dict[str, shaper_mod.Rate] = {}
        self.shaper_ready = False  # one full shaper reconcile done
        self._tasks: set[asyncio.Task[None]] = set()
        self._samples: dict[str, tuple[float, int, int]] = {}
        self.last_pass = PassReport()
        self.next_expiry = float("inf")  # epoch of the next subscription expiry online
        self.radacct_cursor: GapCursor | None = None
        self.force_full = False  # the shaper's first reconcile failed: run a full pass
        # Live ingest (issue 16: a FUP crossing on the wire <= 2 s after the interim):
        # accounting changes wake one ingest pass per burst, then a pass over the
        # subscribers whose sessions changed, on the usage just counted.
        self.coalesce = Coalescer(settings.ingest_coalesce_s)
        self.ingest_wanted = asyncio.Event()
        # radacct_changes id -> username of this box's open sessions changed: each is
        # enforced once the shared ingest (whichever box ran it) has counted its id.
        self.pending: dict[int, str] = {}
        self._view: tuple[float, dict[str, str | None], frozenset[str]] | None = None
        self.ingest_lock = asyncio.Lock()  # the periodic and the live pass, one at a time
        self.live_ingests = 0
        self._ingest_cfg: ingest_mod.Settings | None = None
        self.metrics = Metrics(self.box)
        if hasattr(coa, "stats"):
            self.metrics.watch_coa(coa.stats)
        self._pass_full = self.metrics.pass_seconds.labels("full")
        self._pass_partial = self.metrics.pass_seconds.labels("partial")
        # The full reconcile runs in slices between journal polls: the last username
        # done (None: no sweep under way), its running totals, the last finished one.
        self.sweep: str | None = None
        self.sweep_report = PassReport()
        self.sweep_started = 0.0
        self.scope: SweepScope | None = None
        self.retries_at = 0.0  # monotonic: the next look for due retries
        self.sweep_sends = asyncio.Semaphore(SWEEP_INFLIGHT)
        self.retry_due = float("inf")  # epoch of the earliest retry this process recorded
        self.listener: follow.Listener | None = None
        self.last_sweep = PassReport()
        self.slices = 0
        self.slice_size = settings.reconcile_slice

    @property
    def after_ingest(self) -> set[str]:
        """The subscribers waiting for the ingest to count their sessions' changes."""
        return set(self.pending.values())

    async def ownership_view(self, max_age_s: float = 1.0,
                             ) -> tuple[dict[str, str | None], frozenset[str]]:
        """The CoA-able NASes with their box column, and the live boxes: read at most
        once a `max_age_s` for the accounting filter (a pass reads them afresh)."""
        now = time.monotonic()
        if self._view is None or now - self._view[0] > max_age_s:
            nas = await facts.nas_table()
            assigned = await boxes.nas_boxes()
            live = ownership.live_boxes(await boxes.enforcers_seen(), self.box, time.time())
            self._view = (now, {ip: assigned.get(ip) for ip in nas}, live)
        return self._view[1], self._view[2]

    def acts_on(self, view: tuple[dict[str, str | None], frozenset[str]], nas_ip: str,
                framed_ip: str) -> bool:
        """Does this box have a target for a session on this NAS with this address
        (ownership.session_targets)? 20 boxes share radacct: each looks only at the
        changes of its own NASes and networks."""
        shaped_ip = ""
        if self.local is not None and framed_ip:  # only the shaper looks at the address
            try:
                shaped_ip = shaper_mod.canonical(framed_ip)
            except ValueError:
                pass
        return bool(ownership.session_targets(nas_ip, shaped_ip, view[0], self.box, view[1],
                                              self.local is not None,
                                              self.settings.shaped_networks))

    @property
    def live_ingest(self) -> bool:
        return (self.config is not None and self.settings.ingest_s > 0
                and self.settings.ingest_coalesce_s > 0)

    # --- journal ------------------------------------------------------------------

    async def start_cursor(self) -> None:
        self.cursor = await start_cursor("change_journal", "id")
        self.journal_read_at = time.monotonic()

    async def _journal_pruned_past(self) -> bool:
        """Back after a while (database unreachable, process stopped): were rows this
        cursor had not read pruned meanwhile (dns_filter.journal_prune)? Then a new
        cursor at the head and a full reconcile next."""
        if not journal_prune.needs_check(self.journal_read_at, time.monotonic()):
            return False
        rows = await db.fetch(journal_prune.sql(), [journal_prune.JOURNAL])
        pruned = int(rows[0]["pruned_through"]) if rows else None
        if pruned is None or not journal_prune.missed(self.cursor.high, pruned):
            return False
        log.warning("journal pruned past this box's cursor (%d): full reconcile",
                    self.cursor.high)
        await self.start_cursor()
        # All of it may be gone (head 0): never again below what was pruned.
        self.cursor.high = max(self.cursor.high, pruned)
        self.force_full = True
        self.wake.set()
        return True

    async def poll_journal(self) -> int:
        """One bounded batch of the journal (gap-safe: a row committing late is read)."""
        if await self._journal_pruned_past():
            return 0
        rows, more = await journal.read_batch(self.cursor, "username, kind, origin",
                                              self.settings.batch)
        self.journal_read_at = time.monotonic()
        for r in rows:
            if r["kind"] not in FOLLOWED or not r["username"]:
                continue
            if r["origin"] == journal.ENFORCER:
                continue  # our own write: the wish behind it is already being sent
            self.dirty.add(str(r["username"]))
        if more:
            self.wake.set()  # a backlog: the next batch right after this pass
        return len(rows)

    async def poll_sessions(self) -> int:
        """Accounting changes (a session started, its address or prefix came in an
        Interim-Update): enforce those subscribers now, not at the next ingest.

        Follows radacct_changes (migration 0013's trigger) gap-safely, in bounded
        batches; enforcing an unchanged subscriber again changes nothing. Only the
        sessions this box acts on (its NASes, its shaped networks) are looked at:
        with 20 boxes, 19 of every 20 changes are another box's.
        """
        if self.radacct_cursor is None:
            self.radacct_cursor = await start_cursor("radacct_changes", "id")
            return 0
        rows, more = await read_batch(self.radacct_cursor, "radacct_changes", "id",
                                      "radacctid", self.settings.batch)
        changes: dict[int, list[int]] = {}
        for r in rows:
            changes.setdefault(int(str(r["radacctid"])), []).append(int(str(r["id"])))
        ids = sorted(changes)
        view = await self.ownership_view() if ids else None
        # Without a local shaper only the NAS decides: the others' rows are not read.
        nas_ips: list[str] | None = None
        if view is not None and self.local is None and view[1] != frozenset({self.box}):
            nas_ips = [ip for ip, b in view[0].items()
                       if ownership.nas_owner(b, view[1]).box == self.box]
            if not nas_ips:
                ids = []
        only_mine = "" if not nas_ips else \
            f" AND nasipaddress IN ({', '.join('?' * len(nas_ips))})"
        ours = False
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for r in await db.fetch("SELECT radacctid, username, nasipaddress, framedipaddress,"
                                    " acctstoptime FROM radacct WHERE radacctid IN"
                                    f" ({', '.join('?' * len(chunk))}){only_mine}",
                                    [*chunk, *(nas_ips or [])]):
                assert view is not None
                if not self.acts_on(view, str(r["nasipaddress"] or ""),
                                    str(r["framedipaddress"] or "")):
                    continue
                ours = True
                if r["acctstoptime"] is not None:
                    continue  # a stop: counted by the ingest, nothing to send
                user = str(r["username"])
                if self.live_ingest:
                    # enforced once the ingest counted it: one pass on the usage
                    # this interim brought, not one before and one after it
                    for change in changes[int(str(r["radacctid"]))]:
                        self.pending[change] = user
                else:
                    self.dirty.add(user)
        if ours and self.live_ingest:
            self.coalesce.changed(time.monotonic())
            self.ingest_wanted.set()
        if more:
            self.wake.set()
        return len(rows)

    async def due_retries(self, now: float) -> set[str]:
        # Another box's shaper retries are its own; NAS rows are checked against
        # ownership in the pass (a NAS may have just changed hands).
        rows = await db.fetch("SELECT username FROM enforcement_state WHERE state = 'retrying'"
                              " AND next_retry_at <= ? AND (target = ? OR target LIKE 'nas:%')",
                              [now, self.shaper_target])
        return {str(r["username"]) for r in rows}

    # --- one pass -----------------------------------------------------------------

    async def enforce(self, usernames: set[str] | None, sweep: bool = False) -> PassReport:
        """Bring these subscribers (None: everyone) to their desired state, on the
        targets this box owns (portal/enforcer/ownership.py).

        sweep: a slice of the full reconcile: its CoAs go out at most SWEEP_INFLIGHT
        at a time, so a click's CoA never queues behind thousands of them for a
        RADIUS identifier (a first reconcile of 10k sessions held FUP crossings
        back 15-20 s in bench/scale_bench.py)."""
        started = time.perf_counter()
        report = PassReport()
        now_dt = datetime.now(UTC)
        now = now_dt.timestamp()
        # A cycle that ended with a prepaid one waiting rolls over to it before any
        # speed is decided: the subscriber is never suspended at a paid expiry.
        await rollover.roll_over_due(now_dt, origin=journal.ENFORCER)
        marks = [("rollover", time.perf_counter())]
        # In flight when the state is read: its result may be written before the check
        # below, while `recorded` still shows the state from before the send.
        inflight_before = dict(self.inflight)
        sessions = await facts.open_sessions(usernames)
        recorded = await facts.recorded(usernames)
        nas = await facts.nas_table()
        assigned = await boxes.nas_boxes()
        nas_boxes = {ip: assigned.get(ip) for ip in nas}  # the CoA-able NASes
        live = ownership.live_boxes(await boxes.enforcers_seen(), self.box, now)
        marks.append(("facts", time.perf_counter()))
        # Subscribers named by the journal are looked at even offline: their radreply
        # must say the effective speed before they reconnect (e.g. re-activated).
        named = set(sessions) | (usernames or set())
        known = await facts.subscriber_facts(sorted(named), now_dt, self.tz,
                                             self.settings.cycle)
        desired_of = {u: rules.desired_state(f, self.settings.policy, now_dt)
                      for u, f in known.items()}
        profile = get_profile(self.settings.reply_profile)
        wishes: dict[Want, tuple[Key, facts.Session]] = {}
        to_send: list[Want] = []
        new_rows: list[list[object]] = []
        for u, s in sessions.items():
            if u not in known:
                continue  # a RADIUS user the portal does not manage
            desired = desired_of[u]
            try:
                shaped_ip = shaper_mod.canonical(s.framed_ip) if s.framed_ip else ""
            except ValueError:
                shaped_ip = ""  # no usable Framed-IP-Address: nothing to classify on
            for target in ownership.session_targets(
                    s.nas_ip, shaped_ip, nas_boxes, self.box, live, self.local is not None,
                    self.settings.shaped_networks):
                address = shaped_ip if target == self.shaper_target else s.framed_ip
                key: Key = (target, s.acct_session_id, address, desired)
                want = (u, target)
                wishes[want] = (key, s)
                r = recorded.get(want)
                if rules.is_new(r, target, s.acct_session_id, address, desired):
                    new_rows.append([u, target, s.acct_session_id, address, desired.action,
                                     desired.down_kbps, desired.up_kbps, desired.reason,
                                     "unenforced" if target == ownership.NONE else "pending",
                                     now])
                if rules.should_send(r, target, s.acct_session_id, address, desired, now) \
                        and self.inflight.get(want) != key and inflight_before.get(want) != key:
                    to_send.append(want)
        # Expiry passes without any write: wake for the next one (a full pass).
        upcoming = [f.expires_at.timestamp() for f in known.values() if f.expires_at > now_dt]
        soonest = min(upcoming, default=float("inf"))
        self.next_expiry = soonest if usernames is None else min(self.next_expiry, soonest)
        # Only rows of this box's own targets: another box's rows are its business.
        gone = [w for w in recorded if w not in wishes
                and ownership.responsible(w[1], self.box, nas_boxes, live)]
        # radreply must say the effective speed, so a reconnect gets what CoA set.
        names = sorted({a for a, _, _ in profile.reply_attributes(CoaRate(1000, 1000))})
        current = await facts.radreply_rows(sorted(desired_of), names)
        marks.append(("subscribers", time.perf_counter()))
        stale_reply = [u for u, d in desired_of.items() if rules.radreply_needs_update(
            current.get(u, []), profile.reply_attributes(CoaRate(d.down_kbps, d.up_kbps)))]
        if new_rows or gone or stale_reply:
            async def write(tx: BaseDBAsyncClient) -> None:
                # A usage tier crossed or an expiry passed: the one speed writer.
                await effective.write_desired(tx, {u: desired_of[u] for u in stale_reply},
                                              origin=journal.ENFORCER)
                await db.execute_many(_UPSERT_STATE, new_rows)
                await db.execute_many(
                    "DELETE FROM enforcement_state WHERE username = ? AND target = ?",
                    [[u, t] for u, t in gone])

            await transaction(write, budget_s=DAEMON_BUDGET_S)
        marks.append(("write", time.perf_counter()))
        report.subscribers, report.radreply_updated, report.removed = (
            len({u for u, _ in wishes}), len(stale_reply), len(gone))
        attempts = {w: (recorded[w].attempts if w in recorded and not rules.is_new(
            recorded[w], *wishes[w][0]) else 0) for w in to_send}
        self._apply_shaper(usernames is None, wishes, to_send, attempts, recorded, gone)
        for w in to_send:
            key, s = wishes[w]
            if key[0].startswith("nas:"):
                self.inflight[w] = key
                self._spawn(self._send_coa(w[0], key, s, nas[s.nas_ip], attempts[w],
                                           sweep or usernames is None))
        report.sent = len(to_send)
        report.seconds = time.perf_counter() - started
        if report.seconds > SLOW_TURN_S and usernames is not None and not sweep:
            log.warning("slow enforce of %d subscribers: %.2f s (%s)", len(usernames),
                        report.seconds, ", ".join(
                            f"{name} {at - before:.2f} s" for (name, at), before in
                            zip(marks, [started] + [at for _, at in marks], strict=False)))
        self.last_pass = report
        (self._pass_full if usernames is None else self._pass_partial).observe(report.seconds)
        return report

    def _apply_shaper(self, full: bool, wishes: dict[Want, tuple[Key, facts.Session]],
                      to_send: list[Want], attempts: dict[Want, int],
                      recorded: dict[Want, rules.Recorded], gone: list[Want]) -> None:
        if self.local is None:
            return
        mine = self.shaper_target
        sending = [w for w in to_send if w[1] == mine]
        if full:
            # A full reconcile applies every shaper wish: it also settles the ones
            # waiting for a retry (their backoff need not run out first).
            waiting = [w for w, (key, _) in wishes.items() if w[1] == mine
                       and w not in to_send and w in recorded
                       and recorded[w].state not in ("applied", "failed")
                       and not rules.is_new(recorded[w], *key)]
            for w in waiting:
                attempts[w] = recorded[w].attempts
            sending += waiting
        changes: dict[str, shaper_mod.Rate | None] = {}
        for w in gone:
            r = recorded[w]
            if r.target == mine and r.address and self.shaped.get(r.address) == w[0]:
                changes[r.address] = None
        for w, (key, _) in wishes.items():
            old = recorded.get(w)
            if w[1] == mine and old is not None and old.address != key[2] \
                    and self.shaped.get(old.address) == w[0]:
                changes[old.address] = None  # the subscriber came back on a new address
        for w in sending:
            key = wishes[w][0]
            changes[key[2]] = shaper_mod.Rate(key[3].down_kbps, key[3].up_kbps)
        if not full and not self.shaper_ready:
            # Only a full reconcile may be the first (a partial wish would remove every
            # other subscriber's class): these wait for it, and it comes next.
            self.force_full = True
            for w in sending:
                self._record(_Result(w[0], wishes[w][0], attempts[w], rules.Outcome(
                    False, "waiting for the first full shaper reconcile")))
            return
        if full:
            desired = {key[2]: shaper_mod.Rate(key[3].down_kbps, key[3].up_kbps)
                       for w, (key, _) in wishes.items() if w[1] == mine}
            owners = {key[2]: w[0] for w, (key, _) in wishes.items() if w[1] == mine}
            self._spawn(self._shape(sending, wishes, attempts, desired, None, owners))
        elif changes:
            owners = {**self.shaped, **{wishes[w][0][2]: w[0] for w in sending}}
            self._spawn(self._shape(sending, wishes, attempts, None, changes, owners))

    async def _shape(self, sending: list[Want], wishes: dict[Want, tuple[Key, facts.Session]],
                     attempts: dict[Want, int], desired: dict[str, shaper_mod.Rate] | None,
                     changes: dict[str, shaper_mod.Rate | None] | None,
                     owners: dict[str, str]) -> None:
        assert self.local is not None
        for w in sending:
            self.inflight[w] = wishes[w][0]
        failed: dict[str, str] = {}
        try:
            if desired is not None:
                await self.local.reconcile(desired)
                self.shaper_desired = dict(desired)
                self.shaper_ready = True
            else:
                assert changes is not None
                await self.local.update(changes)
                for address, rate in changes.items():
                    if rate is None:
                        self.shaper_desired.pop(address, None)
                    else:
                        self.shaper_desired[address] = rate
        except shaper_mod.ShaperError as exc:
            for f in exc.failures:
                failed[str(f.address or "*")] = str(f)
            log.warning("shaper: %s", exc)
            if desired is not None:
                # what could be applied was (and is counted); the next full pass repairs
                self.shaper_desired = dict(desired)
        except Exception as exc:  # noqa: BLE001 - e.g. the namespace vanished: retried later
            failed["*"] = f"{type(exc).__name__}: {exc}"
            log.warning("shaper failed: %s", failed["*"])
        self.shaped = {a: u for a, u in owners.items() if a in self.shaper_desired}
        for w in sending:
            key = wishes[w][0]
            error = failed.get(key[2]) or failed.get("*")
            self._record(_Result(w[0], key, attempts[w], rules.Outcome(error is None,
                                                                        error or "")))

    async def _send_coa(self, u: str, key: Key, s: facts.Session, nas: object,
                        attempts_before: int, sweep: bool = False) -> None:
        from coa import Nas

        assert isinstance(nas, Nas)
        if sweep:
            async with self.sweep_sends:
                return await self._send_coa(u, key, s, nas, attempts_before)
        desired = key[3]
        session = SessionRef(u, s.acct_session_id, s.framed_ip or None, s.nas_ip)
        self.metrics.coa_sent.inc()
        if attempts_before:
            self.metrics.coa_retried.inc()
        try:
            if desired.action == "disconnect":
                result: CoaResult = await self.coa.disconnect(nas, session)
            else:
                result = await self.coa.change_rate(
                    nas, session, CoaRate(desired.down_kbps, desired.up_kbps))
            outcome = _coa_outcome(result)
            self.metrics.coa_result.labels(
                "acked" if result.ok else "session_gone" if result.session_gone
                else "nak" if result.code else "no_answer").inc()
        except Exception as exc:  # noqa: BLE001 - a bad NAS row must not stop the others
            outcome = rules.Outcome(False, f"{type(exc).__name__}: {exc}", retryable=False)
            self.metrics.coa_result.labels("error").inc()
        self._record(_Result(u, key, attempts_before, outcome))

    # --- results --------------------------------------------------------------------

    def _record(self, result: _Result) -> None:
        # The send stays in flight until its result is written: a pass in between
        # (a NOTIFY wakes one at any moment) would read the old state and send again.
        self.results.append(result)
        self.flushed.clear()

    async def flush(self) -> int:
        """Write queued results in one transaction; on failure they stay queued."""
        if not self.results:
            self.flushed.set()
            return 0
        # Bounded, so one transaction never holds thousands of state rows: a click's
        # own row may be among them (after a full reconcile's 10k CoAs), and its
        # enforce waits on that row's lock until the batch commits.
        batch, self.results = self.results[:FLUSH_BATCH], self.results[FLUSH_BATCH:]
        rows = []
        for r in batch:
            nxt = rules.after_attempt(r.attempts_before, r.outcome, self.settings.policy, r.at)
            ok = r.outcome.ok
            target, session, address, d = r.key
            applied = "rate" if target.startswith("shaper:") else d.action
            if nxt.next_retry_at is not None:
                self.retry_due = min(self.retry_due, float(nxt.next_retry_at))
            rows.append([nxt.state, nxt.attempts, nxt.last_error, nxt.next_retry_at,
                         ok, applied, ok, d.down_kbps, ok, d.up_kbps, ok, r.at, r.at,
                         r.username, target, session, address, d.action, d.down_kbps,
                         d.up_kbps])
            if not ok:
                log.warning("%s: %s failed (attempt %d): %s", r.username, target,
                            nxt.attempts, nxt.last_error)
        try:
            async def write(tx: BaseDBAsyncClient) -> None:
                await db.execute_many(_RESULT, rows)

            await transaction(write, budget_s=DAEMON_BUDGET_S)
        except Exception:
            self.results = batch + self.results
            raise
        for r in batch:
            want = (r.username, r.key[0])
            if self.inflight.get(want) == r.key:
                del self.inflight[want]
        if not self.results:
            self.flushed.set()
        return len(batch)

    # --- live rates -------------------------------------------------------------------

    async def sample(self) -> int:
        """Shaper counters -> live_rates (bit/s per subscriber), one batched upsert."""
        if self.local is None or not self.shaper_ready:
            return 0
        before = time.monotonic()
        counters = await self.local.counters()
        # The dump happened somewhere in between; a late stamp (a slow call, a busy
        # loop) would shorten the next window and overstate its rate.
        now = (before + time.monotonic()) / 2
        stamp = datetime.now(UTC)
        rates: dict[str, tuple[int, int]] = {}
        for address, c in counters.items():
            u = self.shaped.get(address)
            if u is None:
                continue
            prev = self._samples.get(address)
            self._samples[address] = (now, c.down_bytes, c.up_bytes)
            if prev is None or now <= prev[0]:
                continue
            dt = now - prev[0]
            # A counter that went back is a rebuilt class: count from it afresh.
            down = max(0, c.down_bytes - prev[1]) * 8 / dt
            up = max(0, c.up_bytes - prev[2]) * 8 / dt
            rates[u] = (int(down), int(up))
        for address in set(self._samples) - set(counters):
            del self._samples[address]
        await live.publish(rates, stamp)  # one batched upsert (portal.usage.live's writer)
        return len(rates)

    # --- the daemon -------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for every send in flight and write their results (tests, bench)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.flush()

    async def heartbeat(self) -> int:
        """This box's enforcer is alive: one single-row upsert into boxes."""
        await boxes.heartbeat(self.box, boxes.ENFORCER, time.time(), self.started_at,
                              shaper=self.local is not None,
                              shaped_networks=tuple(str(n) for n in
                                                    self.settings.shaped_networks),
                              journal_cursor=self.cursor.high)
        self.metrics.heartbeat.set(time.time())
        try:
            await self._lag_metrics()
        except Exception as exc:  # noqa: BLE001 - the heartbeat itself was written
            log.debug("lag metrics not read: %s", exc)
        return 1

    async def _lag_metrics(self) -> None:
        """Journal and ingest lag for /metrics: one indexed read per heartbeat."""
        rows = await db.fetch(
            "SELECT (SELECT MAX(id) FROM change_journal) AS journal_head,"
            " (SELECT MAX(id) FROM radacct_changes) AS changes_head,"
            " (SELECT change_cursor FROM usage_ingest WHERE id = 1) AS ingested")
        r = rows[0]
        high = self.cursor.high
        self.metrics.journal_cursor.set(high)
        self.metrics.journal_lag.set(max(0, int(r["journal_head"] or 0) - high))
        self.metrics.ingest_lag.set(max(0, int(r["changes_head"] or 0)
                                        - int(r["ingested"] or 0)))

    async def run(self, stop: asyncio.Event) -> None:
        # Say we are here before the first pass: another box then stops acting on
        # NASes with no box at its next pass (ownership.nas_owner).
        await _retry_until(stop, self.heartbeat, "announcing this box")
        await _retry_until(stop, self.start_cursor, "reading the journal cursor")
        # Start-up objects live as long as the daemon: out of the collector's sight, a
        # full collection never walks them during a pass (gc.freeze is O(1)).
        gc.collect()
        gc.freeze()
        listener = None
        if self.config is not None:
            self.metrics.serve(self.settings.metrics_address, self.settings.metrics_port)
            # PostgreSQL: a committed journal row (or accounting change) wakes the
            # worker at once; the poll every poll_s stays the fallback.
            listener = follow.Listener(dburl.with_application_name(self.config.database_url,
                                                                   self.box),
                                       [follow.JOURNAL_CHANNEL, follow.RADACCT_CHANNEL],
                                       self.wake.set)
            listener.start()
            self.listener = listener
        try:
            await self._run_loops(stop)
        finally:
            if listener is not None:
                await listener.stop()

    async def _run_loops(self, stop: asyncio.Event) -> None:
        loops = [self._worker(stop), self._flusher(stop),
                 self._every(stop, self.settings.heartbeat_s, self.heartbeat, "heartbeat")]
        if self.config is not None and self.settings.ingest_s > 0:
            loops.append(self._every(stop, self.settings.ingest_s, self._ingest, "usage ingest"))
        if self.live_ingest:
            loops.append(self._live_ingest_loop(stop))
        if self.config is not None:
            policy = retention.Policy.from_config(self.config)
            if policy.prune_s > 0:
                loops.append(self._prune_loop(stop, policy))
        if self.local is not None and self.settings.sample_s > 0:
            loops.append(self._every(stop, self.settings.sample_s, self.sample, "live sample"))
        await asyncio.gather(*loops)
        await self.settle()

    async def _worker(self, stop: asyncio.Event) -> None:
        next_full = 0.0
        turn = 0.0
        while not stop.is_set():
            # NOTIFYs come with every accounting commit (hundreds a second): a turn
            # starts at most every NOTIFY_GAP_S, taking what committed meanwhile.
            await asyncio.sleep(max(0.0, turn + NOTIFY_GAP_S - time.monotonic()))
            turn = time.monotonic()
            # Cleared before the turn reads anything: a NOTIFY (or a live ingest's
            # subscribers) arriving from here on wakes the next turn, never lost to
            # a clear after the wait (with a 2 s fallback poll that cost 2 s).
            self.wake.clear()
            batch: set[str] = set()
            try:
                if self.force_full or (self.local is not None and not self.shaper_ready):
                    # The shaper's first reconcile replaces every class: it cannot be
                    # sliced (a slice's wishes would remove every other class).
                    self.force_full = False
                    await self.poll_sessions()
                    report = await self.enforce(None)
                    next_full = time.monotonic() + self.settings.reconcile_s
                    self.sweep = None
                    log.info("reconcile: %d subscribers, %d sent, %d radreply, %d removed, "
                             "%.3f s", report.subscribers, report.sent, report.radreply_updated,
                             report.removed, report.seconds)
                    continue
                if self.sweep is None and (time.monotonic() >= next_full
                                           or time.time() >= self.next_expiry):
                    self._start_sweep()
                    next_full = time.monotonic() + self.settings.reconcile_s
                # The journal first, every turn: a click waits for at most one slice.
                parts = {"journal": time.monotonic()}
                await self.poll_journal()
                parts["sessions"] = time.monotonic()
                await self.poll_sessions()
                parts["enforce"] = time.monotonic()
                # Retries back off for >= 0.3 s: looked for once a poll_s, not at each
                # of the hundreds of NOTIFYs a second accounting brings.
                # Taken and emptied in one step, before any await: the live ingest
                # (another task) adds to `dirty` meanwhile, and an emptying after the
                # retries' query lost those (scale_bench: 1 crossing in ~60 had no CoA
                # until the next full reconcile, 60 s later).
                batch, self.dirty = self.dirty, set()
                if time.monotonic() >= self.retries_at:
                    self.retries_at = time.monotonic() + self.settings.poll_s
                    if time.time() >= self.retry_due:
                        self.retry_due = float("inf")
                    batch |= await self.due_retries(time.time())
                if batch:
                    await self.enforce(batch)
                batch = set()
                parts["slice"] = time.monotonic()
                sweeping = self.sweep is not None and await self.reconcile_slice()
                parts["end"] = time.monotonic()
                if parts["end"] - turn > SLOW_TURN_S:
                    # what a click waited for: it is read at the next turn's journal poll
                    log.warning("slow turn: %.2f s (%s)", parts["end"] - turn, ", ".join(
                        f"{a} {parts[b] - parts[a]:.2f} s"
                        for a, b in zip(list(parts), list(parts)[1:], strict=False)))
                if sweeping:
                    continue  # the next slice at once (after the journal again)
            except Exception:  # noqa: BLE001 - DB or netlink down: keep the work, try again
                self.dirty |= batch
                log.exception("enforcer pass failed; retrying")
            await follow.nap(stop, self.wake, self.poll_wait(time.time()), clear=False)

    def poll_wait(self, now: float) -> float:
        """How long the worker sleeps unless woken: `poll_s`, or while PostgreSQL's
        NOTIFY wakes it for every journal and accounting row, `listen_poll_s` (the
        fallback; idle, it reads nothing 5 times a second) -- never past a retry
        this process recorded as due."""
        if self.listener is None or not self.listener.connected:
            return self.settings.poll_s
        wait = max(self.settings.poll_s, self.settings.listen_poll_s)
        return max(self.settings.poll_s, min(wait, self.retry_due - now))

    # --- the full reconcile, in slices ----------------------------------------------

    def _start_sweep(self) -> None:
        self.sweep = ""
        self.sweep_report = PassReport()
        self.sweep_started = time.perf_counter()
        self.scope = None  # read by the first slice
        # Each slice lowers it again: the expiry that started this sweep is behind us.
        self.next_expiry = float("inf")

    async def sweep_scope(self) -> SweepScope:
        """What this box's full reconcile looks at (read once a sweep): with 20 boxes
        on one database each sweeps its own sessions and state rows, not 200k
        subscribers twenty times over (issue 17)."""
        nas = await facts.nas_table()
        assigned = await boxes.nas_boxes()
        nas_boxes = {ip: assigned.get(ip) for ip in nas}
        live = await self._live()
        if live == frozenset({self.box}):
            return SweepScope(everyone=True, live=live)
        own = tuple(sorted(ip for ip, b in nas_boxes.items()
                           if ownership.nas_owner(b, live).box == self.box))
        targets = [ownership.nas_target(ip) for ip in own] + [self.shaper_target]
        # One box (the first name among the live ones) also sweeps what belongs to no
        # box: subscribers with no open session (their radreply must be right before
        # they connect) and state rows of no box's target ('none', a NAS removed).
        leader = min(live) == self.box
        if leader:
            for r in await db.fetch("SELECT DISTINCT target FROM enforcement_state"):
                t = str(r["target"])
                if t not in targets and ownership.responsible(t, self.box, nas_boxes, live):
                    targets.append(t)
        return SweepScope(False, own, self.local is not None, tuple(targets), leader, live)

    async def _live(self) -> frozenset[str]:
        return ownership.live_boxes(await boxes.enforcers_seen(), self.box, time.time())

    async def slice_names(self, after: str, limit: int) -> tuple[list[str], str | None]:
        """The next usernames of the sweep after `after` (at most `limit`), and where
        the next slice starts (None: the sweep is done).

        Index range reads merged: this box's open sessions and enforcement_state rows
        (the only box: every subscriber and every row; a row whose subscriber is gone
        is removed by the slice naming it), and for the leader the subscribers with
        no open session. Each read is complete up to its last name when it is full,
        so the slice stops at the lowest of those."""
        scope = self.scope
        if scope is None or (not scope.everyone and scope.live != await self._live()) or (
                scope.everyone and await self._live() != frozenset({self.box})):
            # read once a sweep, again when a box came or went meanwhile
            scope = self.scope = await self.sweep_scope()
        reads: list[tuple[str, list[object]]] = []  # (SQL, its parameters)
        if scope.everyone:
            reads += [("SELECT DISTINCT username FROM subscribers WHERE username > ?", []),
                      ("SELECT DISTINCT username FROM enforcement_state WHERE username > ?",
                       [])]
        else:
            if scope.shaper:
                reads.append(("SELECT DISTINCT username FROM radacct WHERE username > ?"
                              " AND acctstoptime IS NULL", []))
            elif scope.nas_ips:
                reads.append(("SELECT DISTINCT username FROM radacct WHERE username > ?"
                              " AND acctstoptime IS NULL AND nasipaddress IN"
                              f" ({', '.join('?' * len(scope.nas_ips))})", list(scope.nas_ips)))
            reads.append(("SELECT DISTINCT username FROM enforcement_state WHERE username > ?"
                          f" AND target IN ({', '.join('?' * len(scope.targets))})",
                          list(scope.targets)))
        names: set[str] = set()
        cutoff: str | None = None
        for sql, params in reads:
            rows = await db.fetch(f"{sql} ORDER BY username LIMIT ?", [after, *params, limit])
            found = [str(r["username"]) for r in rows]
            if len(found) >= limit:
                cutoff = found[-1] if cutoff is None else min(cutoff, found[-1])
            names.update(found)
        if scope.offline:
            # The subscribers with no open session among the next OFFLINE_SPAN x limit
            # (most are online: a range that short would cut every slice short).
            end_rows = await db.fetch("SELECT username FROM subscribers WHERE username > ?"
                                      " ORDER BY username LIMIT 1 OFFSET ?",
                                      [after, limit * OFFLINE_SPAN - 1])
            end = str(end_rows[0]["username"]) if end_rows else None
            rows = await db.fetch(
                "SELECT username FROM subscribers s WHERE username > ?"
                + (" AND username <= ?" if end is not None else "")
                + " AND NOT EXISTS (SELECT 1 FROM radacct r WHERE r.username = s.username"
                " AND r.acctstoptime IS NULL) ORDER BY username LIMIT ?",
                [after, *([end] if end is not None else []), limit])
            found = [str(r["username"]) for r in rows]
            bound = found[-1] if len(found) >= limit else end
            if bound is not None:
                cutoff = bound if cutoff is None else min(cutoff, bound)
            names.update(found)
        ordered = sorted(n for n in names if cutoff is None or n <= cutoff)[:limit]
        if ordered:
            return ordered, ordered[-1]
        return [], cutoff

    async def reconcile_slice(self) -> bool:
        """One slice of the full reconcile (`reconcile_slice` subscribers): what a
        full pass does for them. Returns whether the sweep goes on. The worker polls
        the journal between slices, so a click never waits for a whole pass
        (issue 17: 200k subscribers took ~44 s in one pass)."""
        assert self.sweep is not None
        names, after = await self.slice_names(self.sweep, self.slice_size)
        if after is None:
            r = self.sweep_report
            log.info("reconcile: %d subscribers, %d sent, %d radreply, %d removed, %.3f s "
                     "(in slices)", r.subscribers, r.sent, r.radreply_updated, r.removed,
                     time.perf_counter() - self.sweep_started)
            r.seconds = time.perf_counter() - self.sweep_started
            self.last_sweep = r
            self.sweep = None
            return False
        if not names:
            self.sweep = after  # a range of subscribers all online on other boxes
            return True
        report = await self.enforce(set(names), sweep=True)
        # A slice takes about `reconcile_slice_s` whatever the load: fewer names when
        # the database or the CPU is slow, up to `reconcile_slice` when they are fast.
        target, most = self.settings.reconcile_slice_s, self.settings.reconcile_slice
        scaled = int(len(names) * target / max(report.seconds, 1e-3))
        self.slice_size = max(min(MIN_SLICE, most), min(most, scaled, 2 * len(names)))
        total = self.sweep_report
        total.subscribers += report.subscribers
        total.sent += report.sent
        total.radreply_updated += report.radreply_updated
        total.removed += report.removed
        self.slices += 1
        self.sweep = after
        return True

    async def _flusher(self, stop: asyncio.Event) -> None:
        while not stop.is_set() or self.results:
            try:
                await self.flush()
            except Exception:  # noqa: BLE001
                log.exception("writing enforcement results failed; kept for the next try")
                await asyncio.sleep(0.5)
            if stop.is_set():
                break
            await asyncio.sleep(0.05)

    async def _ingest(self) -> int:
        assert self.config is not None
        # Stale sessions are closed by the box that owns their NAS.
        nas_boxes = await boxes.nas_boxes()
        live = ownership.live_boxes(await boxes.enforcers_seen(), self.box, time.time())
        async with self.ingest_lock:
            # Of N boxes, one a minute scans for stale sessions (whoever comes first).
            result = await ingest_mod.ingest_job(self.config, closes_stale=lambda nas_ip: (
                ownership.closes_stale(nas_ip, nas_boxes, self.box, live)),
                full_every_s=self.settings.ingest_s * 0.9)
        self.metrics.ingest_seconds.labels("full").observe(result.seconds)
        self.metrics.ingest_last.set(time.time())
        changed = await self._ours(result)
        if changed:
            self.dirty |= changed
            self.wake.set()
        return len(changed)

    async def ingest_now(self) -> ingest_mod.Result:
        """One live ingest pass (portal.usage.coalesce says when), then the subscribers
        whose sessions changed, or whose usage it counted, are enforced at once.

        What it buys: a FUP tier crossed by an Interim-Update is on the wire within
        ~poll + window + one pass (tests/enforcer/test_fup_wire.py, real FreeRADIUS,
        20 crossings: p99 207 ms on SQLite, 144 ms on PostgreSQL) instead of up to
        `ingest_s` (60 s; 50.6 s measured) later. What it costs: one short
        transaction per burst -- one batch of changes, no scan of open sessions
        (bench/ingest_bench.py, 10,000 open sessions: a pass for one interim takes
        0.3 ms on SQLite, 1.0 ms on PostgreSQL, against 23 / 31 ms for the periodic
        pass over the same database; figures in portal/enforcer/README.md).
        """
        assert self.config is not None
        self.coalesce.start(time.monotonic())
        pending, self.pending = self.pending, {}
        try:
            async with self.ingest_lock:
                result = await ingest_mod.ingest_once(self._ingest_settings(),
                                                      closes_stale=_never, live=True)
                # Whoever ran the pass (20 boxes share one ingest; ours found it busy
                # or took one batch), a change its committed cursor covers is counted:
                # its subscriber is enforced now, the others after a later pass.
                # (Issue 17: waiting until the ingest covered every change seen, the
                # newest included, starved the box while 670 interims/s came in.)
                cursor = await ingest_mod.ingest_cursor() if pending else None
        except BaseException:
            self.dirty |= set(pending.values())  # enforced anyway; usage at the next pass
            self.wake.set()
            raise
        self.live_ingests += 1
        self.metrics.ingest_seconds.labels("live").observe(result.seconds)
        self.metrics.ingest_last.set(time.time())
        left = {i: u for i, u in pending.items()
                if cursor is None or not ingest_mod.covers(cursor, i)}
        users = {u for i, u in pending.items() if i not in left}
        if left:
            self.pending.update(left)
        if left or result.more:
            self.coalesce.changed(time.monotonic())  # look again after the next window
        users |= await self._ours(result)
        if users:
            self.dirty |= users
            self.wake.set()
        return result

    async def _ours(self, result: ingest_mod.Result) -> set[str]:
        """The subscribers whose usage this pass counted, on this box's sessions."""
        if not result.where:
            return set()
        view = await self.ownership_view()
        return {u for u, (nas_ip, framed_ip) in result.where.items()
                if self.acts_on(view, nas_ip, framed_ip)}

    def _ingest_settings(self) -> ingest_mod.Settings:
        if self._ingest_cfg is None:
            assert self.config is not None
            self._ingest_cfg = ingest_mod.Settings.from_config(self.config)
        return self._ingest_cfg

    async def _live_ingest_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wait = self.coalesce.due_in(time.monotonic())
            if wait is None:
                await follow.nap(stop, self.ingest_wanted, 3600.0)
                continue
            if wait > 0:
                await follow.nap(stop, None, wait)
                continue
            try:
                await self.ingest_now()
            except Exception:  # noqa: BLE001 - the database may be down: look again later
                log.exception("live usage ingest failed; retrying")
                self.coalesce.changed(time.monotonic())
                await follow.nap(stop, None, 1.0)

    async def _prune_loop(self, stop: asyncio.Event, policy: retention.Policy) -> None:
        """Data lifecycle (portal.store.retention) every prune_s, the first one prune_s
        after start; on PostgreSQL one box at a time (the others skip)."""
        while not stop.is_set():
            await follow.nap(stop, None, policy.prune_s)
            if stop.is_set():
                break
            try:
                report = await retention.prune(policy)
                log.info("retention: %s", report.as_dict())
                for table, n in (("radacct", report.sessions_recorded),
                                 ("acct_sessions", report.session_records_pruned),
                                 ("change_journal", report.journal_pruned),
                                 ("radacct_changes", report.radacct_changes_pruned),
                                 ("audit_log", report.audit_pruned)):
                    self.metrics.prunes.labels(table).inc(n)
            except Exception:  # noqa: BLE001 - the next run tries again
                log.exception("retention prune failed")

    async def _every(self, stop: asyncio.Event, seconds: float,
                     job: Callable[[], Awaitable[int]], what: str) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                await job()
            except Exception:  # noqa: BLE001 - the next tick tries again
                log.exception("%s failed", what)
            await follow.nap(stop, None, max(0.0, seconds - (time.monotonic() - started)))


def _never(_nas_ip: str) -> bool:
    return False  # a live pass closes no stale session: the periodic pass does


def _coa_outcome(result: CoaResult) -> rules.Outcome:
    if result.ok:
        return rules.Outcome(True)
    if result.session_gone:
        return rules.Outcome(False, "NAK 503: session gone", retryable=False)
    what = (f"NAK code {result.code} Error-Cause {result.error_cause}" if result.code
            else "no answer")
    return rules.Outcome(False, f"{what}: {result.message}".rstrip(": "), result.retryable)


async def _retry_until(stop: asyncio.Event, fn: Callable[[], Awaitable[object]],
                       what: str) -> None:
    delay = 0.2
    while not stop.is_set():
        try:
            await fn()
            return
        except Exception:  # noqa: BLE001 - the database may come up after us
            log.warning("%s failed; retrying in %.1f s", what, delay, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 5.0)


def status_rows(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """enforcement_state rows as an operator reads them (`ispedge enforcer status`)."""

    def when(value: object) -> str:
        if value is None:
            return "-"
        return datetime.fromtimestamp(float(str(value)), UTC).isoformat(timespec="seconds")

    out = []
    for r in rows:
        applied = "-" if r["applied_down_kbps"] is None else (
            f"{r['applied_action']} {r['applied_down_kbps']}/{r['applied_up_kbps']}")
        out.append({"username": r["username"], "target": r["target"], "state": r["state"],
                    "desired": f"{r['desired_action']} {r['desired_down_kbps']}/"
                               f"{r['desired_up_kbps']} ({r['reason']})",
                    "applied": applied, "applied_at": when(r["applied_at"]),
                    "attempts": r["attempts"], "next_retry_at": when(r["next_retry_at"]),
                    "last_error": r["last_error"] or "-"})
    return out


def unowned_row(u: ownership.Unowned) -> dict[str, object]:
    """An unowned NAS or shaper in the shape of a status row (state `unowned`)."""
    return {"username": "-", "target": u.target, "state": "unowned",
            "desired": f"{u.sessions} open session{'s' if u.sessions != 1 else ''}",
            "applied": "-", "applied_at": "-", "attempts": 0, "next_retry_at": "-",
            "last_error": u.problem}


def dumps(rows: list[dict[str, object]]) -> str:
    return json.dumps(rows, indent=2)
