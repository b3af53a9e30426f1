"""What the notifier's exactly-once bookkeeping costs, against plain SMTP sends.

    .venv/bin/python bench/notify_bench.py [--messages 500] [--db postgres://...]

A local SMTP server (aiosmtpd) receives:
- the reference: the same number of messages sent by smtplib, one connection each,
  one after the other (what a naive cron mailer does), measured in the same run;
- the notifier: that many expiry reminders found by one scan, queued (dedup keys),
  claimed, committed 'sending', sent and recorded 'sent' by its real loop.
Also the latency of one journal event (a receipt) to the SMTP server, median and
max over 20, with the default 200 ms poll. Nothing is asserted; the figures go
into portal/notifier/README.md. The default database is a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portal.core import subscribers  # noqa: E402
from portal.notifier.daemon import Notifier  # noqa: E402
from portal.notifier.settings import Settings, Smtp  # noqa: E402
from portal.store import db, migrations  # noqa: E402
from tests.notifier.sinks import SmtpSink  # noqa: E402
from tests.support import seed  # noqa: E402


async def until(done: Callable[[], bool], every_s: float) -> None:
    while True:  # the SMTP server runs in its own thread: polled
        if done():
            return
        await asyncio.sleep(every_s)


def reference(port: int, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "noc@isp.example", f"ref{i}@x.example", "s"
        msg.set_content("body")
        with smtplib.SMTP("127.0.0.1", port) as s:
            s.send_message(msg)
    return time.perf_counter() - started


async def main(n: int, url: str | None) -> None:
    tmp = tempfile.mkdtemp()
    url = url or f"sqlite://{tmp}/bench.db"
    await db.open_db(url)
    await migrations.upgrade()
    sink = SmtpSink()
    sink.start()
    try:
        await seed.reseller_with_plans("acme")
        soon = datetime.now(UTC) + timedelta(days=2)
        for i in range(n):
            await subscribers.add_subscriber(f"u{i}", "secret-pw", "acme", "Basic",
                                             email=f"u{i}@x.example")
        await db.execute("UPDATE subscribers SET expires_at = ?", [db.db_time(soon)])
        ref = await asyncio.to_thread(reference, sink.port, n)
        settings = Settings(channels=("email",), poll_s=0.2, scan_s=3600, batch=50,
                            smtp=Smtp("127.0.0.1", sink.port, "none", sender="noc@isp.example"),
                            name="bench")
        notifier = Notifier(settings)
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.ensure_future(notifier.run(stop))
        await until(lambda: len(sink.messages) >= 2 * n, 0.01)
        took = time.perf_counter() - started
        latencies = []
        for i in range(20):
            before = len(sink.messages)
            t = time.monotonic()
            await subscribers.credit(f"u{i}", 100, "bench")
            await until(lambda b=before: len(sink.messages) > b, 0.002)
            latencies.append(sink.messages[-1][0] - t)
        stop.set()
        await task
        print(f"database: {db.current_dialect()}, {n} messages")
        print(f"reference, smtplib one by one:  {ref:6.2f} s  {n / ref:7.1f} msg/s")
        print(f"notifier, scan -> sent recorded: {took:6.2f} s  {n / took:7.1f} msg/s")
        print(f"journal event -> SMTP server: median {statistics.median(latencies):.3f} s,"
              f" max {max(latencies):.3f} s (poll 200 ms)")
    finally:
        sink.stop()
        await db.close_db()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=500)
    p.add_argument("--db")
    a = p.parse_args()
    asyncio.run(main(a.messages, a.db))
