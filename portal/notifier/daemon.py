"""The notifier daemon: one loop that queues and one that sends.

Queueing: follow the change journal and the invoices table (gap-safe cursors,
woken by the journal's NOTIFY on PostgreSQL, else polled every poll_ms) and scan
expiry dates every scan_s;
events -> outbox rows (portal/notifier/events.py), de-duplicated by key.
Sending: take back rows whose notifier died (outbox.recover), claim due rows
(committed before anything is sent), send each in its own task with its own
timeout, so a gateway that hangs or fails holds nothing else up: its rows are
retried with backoff (outbox.backoff) and the error is on the row for
`ispedge notifications log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from dns_filter.gapcursor import GapCursor
from portal.core import notifications
from portal.notifier import events, outbox
from portal.notifier.channels import Abandoned, Ambiguous, SendError
from portal.notifier.channels import gateway as gateway_channel
from portal.notifier.channels import smtp as smtp_channel
from portal.notifier.settings import Settings
from portal.store import db, follow
from portal.store.tx import DAEMON_BUDGET_S, transaction

log = logging.getLogger("ispedge.notifier")

JOURNAL, INVOICES = "change_journal", "invoices"
JOURNAL_COLUMNS = "id, created_at, username, kind, payload"
INVOICE_COLUMNS = "id, username, number, kind, issued_at, currency, total_cents"
PER_CHANNEL = 8  # sends in flight per channel


def _cursor_name(table: str) -> str:
    return "notifier" if table == JOURNAL else f"notifier:{table}"


class Notifier:
    def __init__(self, settings: Settings, url: str = "") -> None:
        self.settings = settings
        self.url = url
        self.me = settings.name
        self.cursor: GapCursor | None = None  # change_journal
        self.invoice_cursor: GapCursor | None = None  # invoices (documents issued)
        self.saved: dict[str, int] = {}  # table -> the floor last saved in notifier_cursor
        self.wake = asyncio.Event()
        self.next_scan = 0.0
        self.inflight: set[int] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.limits = {c: asyncio.Semaphore(PER_CHANNEL) for c in ("email", "sms", "push")}
        self.keys: notifications.KeyPair | None = None
        self.sent = 0

    # --- queueing ---------------------------------------------------------------------

    async def start_cursor(self) -> None:
        self.cursor = await self._start(JOURNAL)
        self.invoice_cursor = await self._start(INVOICES)

    async def _start(self, table: str) -> GapCursor:
        rows = await db.fetch("SELECT journal_id FROM notifier_cursor WHERE name = ?",
                              [_cursor_name(table)])
        if rows:
            # Re-read from where the last run was sure it had everything: the dedup key
            # makes rows read twice harmless.
            return GapCursor(high=int(rows[0]["journal_id"]))
        return await follow.start_cursor(table, "id")

    async def queue_journal(self, now: datetime) -> int:
        """New journal rows and issued documents -> outbox rows."""
        assert self.cursor is not None and self.invoice_cursor is not None
        queued = await self._follow(JOURNAL, self.cursor, JOURNAL_COLUMNS, now)
        return queued + await self._follow(INVOICES, self.invoice_cursor, INVOICE_COLUMNS, now)

    async def _follow(self, table: str, cursor: GapCursor, columns: str, now: datetime) -> int:
        queued = 0
        while True:
            rows, full = await follow.read_batch(cursor, table, "id", columns)
            if rows:
                found = (await events.from_journal(rows, now) if table == JOURNAL
                         else events.from_invoices(rows, now))
                queued += await outbox.enqueue(await events.compose(found, self.settings, now))
            if not full:
                break
        gaps = cursor.open_gaps()
        floor = min(gaps) - 1 if gaps else cursor.high
        if floor != self.saved.get(table):
            async def save(tx: BaseDBAsyncClient) -> None:
                await db.execute(
                    "INSERT INTO notifier_cursor (name, journal_id) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET journal_id = excluded.journal_id",
                    [_cursor_name(table), floor])

            await transaction(save, budget_s=DAEMON_BUDGET_S)
            self.saved[table] = floor
        return queued

    async def queue_expiry(self, now: datetime) -> int:
        return await outbox.enqueue(await events.compose(
            await events.expiry(self.settings, now), self.settings, now))

    # --- sending ----------------------------------------------------------------------

    async def send_due(self) -> int:
        room = self.settings.batch - len(self.inflight)
        if room <= 0 or not await outbox.anything_due():
            return 0
        await outbox.recover()
        rows = await outbox.claim(self.me, room, self.settings.lease_s)
        for row in rows:
            self.inflight.add(int(row["id"]))
            task = asyncio.ensure_future(self._send_one(row))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return len(rows)

    async def _send_one(self, row: dict[str, Any]) -> None:
        row_id = int(row["id"])
        s = self.settings
        hold = s.send_timeout_s + s.lease_s

        async def commit() -> bool:
            return await outbox.to_sending(row_id, self.me, hold)

        committed = False

        async def tracked_commit() -> bool:
            nonlocal committed
            ok = await commit()
            committed = committed or ok
            return ok

        try:
            async with self.limits[str(row["channel"])]:
                await asyncio.wait_for(self._channel_send(row, tracked_commit),
                                       s.send_timeout_s + 5)
            await outbox.finish(row_id, self.me, sent=True)
            self.sent += 1
            log.info("sent #%s %s %s to %s", row_id, row["event"], row["channel"],
                     row["username"])
        except Abandoned:
            log.warning("#%s: claim taken back before sending; nothing sent", row_id)
        except Ambiguous as exc:
            # Maybe delivered: left 'sending'; after the lease it is 'unknown', never resent.
            log.warning("#%s: %s", row_id, exc)
        except (SendError, Exception) as exc:  # noqa: BLE001 - every failure is recorded
            retry = exc.retry if isinstance(exc, SendError) else True
            before = not committed
            attempts = int(row["attempts"]) + 1
            retry_at = None
            if retry and attempts < s.max_attempts:
                retry_at = time.time() + outbox.backoff(attempts, s.retry_base_s,
                                                        s.retry_max_s)
            message = str(exc) if isinstance(exc, SendError) else f"{type(exc).__name__}: {exc}"
            log.warning("#%s %s to %s failed (%s)%s", row_id, row["channel"], row["username"],
                        message, "" if retry_at else ": given up")
            with contextlib.suppress(Exception):
                await outbox.finish(row_id, self.me, sent=False, error=message,
                                    retry_at=retry_at, before_send=before)
        finally:
            self.inflight.discard(row_id)
            self.wake.set()

    async def _channel_send(self, row: dict[str, Any], commit: Any) -> None:
        s = self.settings
        channel = str(row["channel"])
        if channel == "email":
            if s.smtp is None:
                raise SendError("e-mail is not configured", retry=False, before_commit=True)
            await smtp_channel.send(s.smtp, row, s.send_timeout_s, commit)
        elif channel == "sms":
            if s.gateway is None:
                raise SendError("the SMS gateway is not configured", retry=False,
                                before_commit=True)
            await gateway_channel.send(s.gateway, row, s.send_timeout_s, commit)
        else:
            target = str(row["target"])
            sub = None
            if target.startswith("sub:") and target[4:].isdigit():
                found = await db.fetch("SELECT endpoint, p256dh, auth FROM push_subscriptions"
                                       " WHERE id = ?", [int(target[4:])])
                sub = found[0] if found else None
            from portal.notifier.channels import push as push_channel  # only when used

            if self.keys is None:
                self.keys = await notifications.vapid_keys()
            try:
                await push_channel.send(sub, row, self.keys.private_pem, s.vapid_subject,
                                        s.send_timeout_s, commit)
            except SendError as exc:
                if "expired (" in str(exc) and sub is not None:
                    await self._forget_push(int(target[4:]))
                raise

    async def _forget_push(self, sub_id: int) -> None:
        async def write(tx: BaseDBAsyncClient) -> None:
            await db.execute("DELETE FROM push_subscriptions WHERE id = ?", [sub_id])

        await transaction(write, budget_s=DAEMON_BUDGET_S)

    # --- the loop ---------------------------------------------------------------------

    async def pass_once(self) -> None:
        now = datetime.now(UTC)
        await self.queue_journal(now)
        if time.monotonic() >= self.next_scan:
            await self.queue_expiry(now)
            self.next_scan = time.monotonic() + self.settings.scan_s
        await self.send_due()

    async def run(self, stop: asyncio.Event) -> None:
        await self.start_cursor()
        listener = follow.Listener(self.url, [follow.JOURNAL_CHANNEL], self.wake.set)
        if self.url:
            listener.start()
        log.info("notifier %s: channels %s", self.me,
                 ", ".join(c for c in ("email", "sms", "push") if self.settings.enabled(c))
                 or "none configured")
        try:
            while not stop.is_set():
                try:
                    await self.pass_once()
                except Exception:
                    log.exception("notifier pass failed; trying again")
                # A wake during the pass (a NOTIFY) makes this return at once; clearing
                # it before the wait, as here before, lost it until the next poll.
                await follow.nap(stop, self.wake, self.settings.poll_s)
        finally:
            await listener.stop()
            # Sends in flight finish (each bounded by its timeout) before the exit.
            if self.tasks:
                await asyncio.wait(set(self.tasks), timeout=self.settings.send_timeout_s + 5)

