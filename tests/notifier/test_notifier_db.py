"""The notifier against a real database (SQLite and PostgreSQL) and real local peers:
an SMTP server (aiosmtpd), an HTTP sink as the SMS gateway, an HTTPS push service that
decrypts with the subscription's keys. The notifier runs its real loop in-process here;
test_notifier_kill.py runs `ispedge notifier` processes and kills them."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from portal.core import (
    language,
    notifications,
    notify_templates,
    resellers,
    subscribers,
    tickets,
    topups,
)
from portal.notifier.channels import push
from portal.notifier.settings import Gateway
from portal.store import db as pdb
from portal.store.models import Subscriber
from tests.notifier import helpers
from tests.notifier.helpers import outbox, running, until
from tests.notifier.sinks import Browser, HttpSink, SmtpSink, make_cert

PHONE = "+961 70 123&456"
NAME = 'Zoë "Z" Haddad & co'


@pytest.fixture
def sms() -> Iterator[HttpSink]:
    sink = HttpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def push_service(tmp_path: Path) -> Iterator[HttpSink]:
    """An HTTPS push service on 127.0.0.1, let through by the test-only allowance."""
    ca, cert, key = make_cert(tmp_path)
    sink = HttpSink(tls=(cert, key))
    sink.status = 201
    sink.start()
    push.TEST_ALLOWANCE = push.Allowance((ipaddress.ip_network("127.0.0.0/8"),), str(ca))
    try:
        yield sink
    finally:
        push.TEST_ALLOWANCE = None
        sink.stop()


def gateway(sink: HttpSink) -> Gateway:
    return Gateway(f"http://127.0.0.1:{sink.port}/send?to={{{{ to }}}}&sender=Acme%20Net",
                   "POST", (("X-Api-Key", "k-123"),),
                   '{"number": {{ to }}, "message": {{ text }}, "flash": false}',
                   "application/json")


async def test_expiry_reminder_on_every_channel_encoded_and_decrypted(
        db: str, smtp: SmtpSink, sms: HttpSink, push_service: HttpSink) -> None:
    port = smtp.port
    await helpers.customer("zoe", email="zoe@home.example", phone=PHONE, full_name=NAME,
                           expires_in=timedelta(days=2, hours=1))
    browser = Browser()
    await notifications.add_push_subscription("zoe", notifications.check_push_subscription(
        {"endpoint": f"https://localhost:{push_service.port}/push/abc", "keys": browser.keys()}))
    async with running(helpers.settings(port, gateway(sms))):
        await until(lambda: smtp.to("zoe@home.example") and sms.requests
                    and push_service.requests, what="three channels")
    mail = smtp.to("zoe@home.example")
    assert len(mail) == 1
    assert mail[0]["Subject"] == "Your Basic plan expires in 3 days"
    assert mail[0]["From"] == helpers.SENDER and mail[0]["Message-ID"]
    assert NAME in mail[0].get_payload(decode=True).decode()

    # The SMS gateway: the number URL-encoded in the URL, JSON-encoded in the body.
    (_, method, path, headers, body), = sms.requests
    assert method == "POST" and headers["X-Api-Key"] == "k-123"
    query = parse_qs(urlsplit(path).query)
    assert query == {"to": [PHONE], "sender": ["Acme Net"]}
    sent = json.loads(body)
    assert sent["number"] == PHONE and sent["flash"] is False
    assert sent["message"].startswith(f"Hello {NAME}, your Basic plan")
    assert headers["Content-Type"] == "application/json; charset=utf-8"

    # Web Push: aes128gcm that decrypts with the subscription's own keys, VAPID-signed.
    (_, method, path, headers, body), = push_service.requests
    assert path == "/push/abc" and headers["Content-Encoding"] == "aes128gcm"
    assert headers["Authorization"].startswith("vapid t=")
    keys = await notifications.vapid_keys()
    assert f"k={keys.public_b64}" in headers["Authorization"]
    shown = browser.decrypt(body)
    assert shown["title"] == "Your Basic plan expires in 3 days" and NAME in shown["body"]

    rows = await outbox("zoe")
    assert sorted((r["channel"], r["state"], r["attempts"]) for r in rows) == [
        ("email", "sent", 1), ("push", "sent", 1), ("sms", "sent", 1)]

    # Without the test-only allowance, endpoints on private addresses are refused: by
    # address, by a name resolving to one, IPv4-mapped, CGNAT. Nothing reaches them.
    push.TEST_ALLOWANCE = None
    await helpers.customer("pat", expires_in=timedelta(hours=20))
    for endpoint in (f"https://127.0.0.1:{push_service.port}/p",
                     f"https://localhost:{push_service.port}/p", "https://10.20.30.40/p",
                     "https://[::1]/p", "https://[::ffff:192.168.1.1]/p",
                     "https://100.64.1.1/p"):
        await notifications.add_push_subscription("pat", notifications.check_push_subscription(
            {"endpoint": endpoint, "keys": Browser().keys()}))
    async with running(helpers.settings()):
        await until(lambda: _all_done("pat"), what="every push given up")
    rows = await outbox("pat")
    assert len(rows) == 6
    for r in rows:
        assert r["state"] == "failed" and "non-public address" in r["last_error"], r
        assert r["attempts"] == 1  # refused at once, never retried
    assert len(push_service.requests) == 1  # zoe's only


async def _all_done(username: str) -> bool:
    rows = await outbox(username)
    return bool(rows) and all(r["state"] in ("sent", "failed") for r in rows)


async def test_a_failing_gateway_holds_nothing_else_and_is_retried_with_backoff(
        db: str, smtp: SmtpSink, sms: HttpSink) -> None:
    port = smtp.port
    sms.status = 503
    sms.hold.clear()  # the gateway hangs, then fails
    for n in range(3):
        await helpers.customer(f"u{n}", email=f"u{n}@home.example", phone=f"+1555000{n}",
                               expires_in=timedelta(hours=10))
    async with running(helpers.settings(port, gateway(sms), retry_base_s=0.5,
                                        send_timeout_s=20.0)):
        await until(lambda: len(smtp.messages) == 3, 15, "the e-mails")
        # ...while the gateway still holds every SMS: nothing waited for it.
        await until(lambda: len(sms.requests) == 3, 15, "the SMS requests")
        assert not sms.hold.is_set()
        assert {r["state"] for r in await outbox() if r["channel"] == "sms"} == {"sending"}
        sms.hold.set()
        await until(lambda: _sms_failed_once(), what="the gateway's failures recorded")
        failing = [r for r in await outbox() if r["channel"] == "sms"]
        for r in failing:
            assert r["state"] in ("pending", "claimed", "sending")
            assert r["last_error"].startswith("gateway answered 503")
        sms.status = 200
        await until(lambda: _channel_sent("sms", 3), what="the SMS after the gateway is back")
    rows = [r for r in await outbox() if r["channel"] == "sms"]
    assert all(r["attempts"] >= 2 for r in rows)
    assert len(smtp.messages) == 3


async def _sms_failed_once() -> bool:
    rows = [r for r in await outbox() if r["channel"] == "sms"]
    return len(rows) == 3 and all(r["attempts"] >= 1 and r["last_error"] for r in rows)


async def _channel_sent(channel: str, n: int) -> bool:
    return len([r for r in await outbox() if r["channel"] == channel
                and r["state"] == "sent"]) == n


async def test_tickets_receipts_quiet_hours_templates_and_reminder_keys(
        db: str, smtp: SmtpSink) -> None:
    port = smtp.port
    await helpers.customer("ann", email="ann@home.example")
    await helpers.customer("quiet", email="quiet@home.example")
    await helpers.customer("other", email="other@home.example", reseller="beta")
    ann = await Subscriber.get(username="ann")
    # A reseller's own wording, in the subscriber's language (en), for the receipt.
    await notify_templates.set_template(ann.reseller_id, "en", "receipt", "email",
                                        "Acme receipt {{ number }}",
                                        "Thanks {{ name }}: {{ amount }} {{ currency }}")
    # ...and in French; a subscriber speaking Arabic, with no Arabic template, gets the
    # built-in Arabic text (a template in another language does not replace it).
    await notify_templates.set_template(ann.reseller_id, "fr", "receipt", "email",
                                        "Reçu {{ number }}", "Merci {{ name }}")
    await helpers.customer("fra", email="fra@home.example")
    await helpers.customer("ara", email="ara@home.example")
    await language.set_language("fra", "fr")
    await language.set_language("ara", "ar")
    await notifications.set_prefs("quiet", notifications.check_prefs(
        {"quiet_start": _hhmm(-1), "quiet_end": _hhmm(+2)}))
    async with running(helpers.settings(port)) as notifier:
        ticket = await tickets.open_ticket(ann, "billing", "Invoice question", "Hello?")
        await tickets.operator_reply("op", ticket.id, "internal: check ledger", internal=True)
        await tickets.operator_reply("op", ticket.id, "All fine, thanks!")
        await subscribers.credit("ann", 2500, "cash")
        await subscribers.credit("other", 700, "cash")
        await subscribers.credit("quiet", 100, "cash")
        await subscribers.credit("fra", 100, "cash")
        await subscribers.credit("ara", 100, "cash")
        await until(lambda: len(smtp.to("ann@home.example")) == 2
                    and smtp.to("other@home.example") and smtp.to("fra@home.example")
                    and smtp.to("ara@home.example"), what="ticket answer and receipts")
        # Every journal row read: the internal note made no message.
        head = int((await pdb.fetch("SELECT MAX(id) AS m FROM change_journal"))[0]["m"])
        await until(lambda: notifier.cursor is not None and notifier.cursor.high >= head,
                    what="the journal read to its head")
    mails = {m["Subject"]: m for m in smtp.to("ann@home.example")}
    assert f"Your ticket #{ticket.id} was answered" in mails
    receipt = next(m for s, m in mails.items() if s.startswith("Acme receipt "))
    assert receipt.get_payload(decode=True).decode().strip() == "Thanks Test Person: 25.00 USD"
    other = smtp.to("other@home.example")[0]
    assert other["Subject"].startswith("Receipt ") and "7.00 USD" in other["Subject"]
    assert [r["event"] for r in await outbox("ann")] == ["ticket_answered", "receipt"]
    assert smtp.to("fra@home.example")[0]["Subject"].startswith("Reçu ")
    assert smtp.to("ara@home.example")[0]["Subject"].startswith("إيصال ")
    assert smtp.to("ara@home.example")[0]["Subject"].endswith(": 1.00 USD")
    assert [(r["language"]) for r in await outbox("fra") + await outbox("ara")] == ["fr", "ar"]
    # Quiet hours: queued, held until they end.
    (held,) = await outbox("quiet")
    assert held["state"] == "pending" and held["next_try_at"] > time.time() + 3000
    assert smtp.to("quiet@home.example") == []
    await _reminders_are_queued_once_and_again_for_a_renewed_cycle()


async def _reminders_are_queued_once_and_again_for_a_renewed_cycle() -> None:
    from portal.notifier import events
    from portal.notifier import outbox as box

    s = helpers.settings(587)
    await helpers.customer("rea", email="rea@home.example", expires_in=timedelta(days=2))
    now = datetime.now(UTC)

    async def queue(at: datetime) -> int:  # rea's only (the others expire in 30 days)
        found = [e for e in await events.expiry(s, at) if e.username == "rea"]
        return await box.enqueue(await events.compose(found, s, at))

    assert await queue(now) == 1
    assert await queue(now) == 0  # a second notifier or scan adds nothing
    assert await queue(now + timedelta(days=1, hours=1)) == 1  # the 1-day reminder
    assert await queue(now + timedelta(days=2, hours=1)) == 1  # expired
    assert await queue(now + timedelta(days=2, hours=2)) == 0
    # Renewed: a new expiry date is a new event.
    await pdb.execute("UPDATE subscribers SET expires_at = ? WHERE username = 'rea'",
                     [pdb.db_time(now + timedelta(days=32))])
    assert await queue(now + timedelta(days=29, hours=12)) == 1
    assert [(r["event"], r["subject"]) for r in await outbox("rea")] == [
        ("expiry_soon", "Your Basic plan expires in 3 days"),
        ("expiry_soon", "Your Basic plan expires in 1 day"),
        ("expired", "Your Basic plan has expired"),
        ("expiry_soon", "Your Basic plan expires in 3 days")]


def _hhmm(hours: int) -> str:
    t = datetime.now(UTC) + timedelta(hours=hours)
    return f"{t.hour:02d}:{t.minute:02d}"


async def test_fup_tier_notification_arrives_within_5_s_of_the_tier_applied(
        db: str, sms: HttpSink) -> None:
    """The real enforcer applies the tier (radreply, journal row, CoA to a NAS emulator);
    the notifier's loop tells the subscriber through the SMS gateway."""
    import sys

    from coa import CoaClient
    from coa.emulator import NasEmulator
    from portal.enforcer.daemon import Enforcer
    from tests.enforcer import helpers as eh

    nas = NasEmulator(eh.SECRET)
    await eh.add_nas("127.0.0.1", await nas.start())
    try:
        await helpers.customer("fay", phone="+15550100")  # Basic: monthly:1:100GB:2000/1000
        await eh.online("fay", "s-fay", "100.64.0.20")
        async with CoaClient(timeout_s=0.5, retries=1) as coa, \
                running(helpers.settings(gateway=gateway(sms), poll_s=0.2)) as notifier:
            enforcer = Enforcer(eh.settings(), coa)
            await enforcer.enforce(None)
            await enforcer.settle()
            await until(lambda: notifier.cursor is not None, what="the notifier following")
            await eh.use_bytes("fay", 101 * eh.GB)
            report = await enforcer.enforce({"fay"})
            applied = time.monotonic()  # radreply and the journal row committed
            await enforcer.settle()
            acked = time.monotonic()  # the NAS acknowledged the tier's rate
            assert report.radreply_updated == 1
            await until(lambda: sms.requests, 5.0, "the FUP-tier SMS")
            arrived = sms.requests[0][0]
            # Extra data bought (plan speed again), then used up too: told as such.
            await resellers.configure("acme", price_per_gb="1.00")
            await subscribers.credit("fay", 5000, "cash")
            fay = await Subscriber.get(username="fay")
            await topups.buy_data(fay.id, 10, None, datetime.now(UTC))
            await enforcer.enforce({"fay"})
            await eh.use_bytes("fay", 112 * eh.GB)
            assert (await enforcer.enforce({"fay"})).radreply_updated == 1
            await until(lambda: any(b"extra data you bought is used up" in r[4]
                                    for r in sms.requests), 5.0, "the extra-data SMS")
    finally:
        nas.close()
    print(f"FUP tier -> SMS: {arrived - applied:.3f} s after the tier was written, "
          f"{arrived - acked:.3f} s after the NAS acknowledged it", file=sys.__stderr__)
    assert arrived - applied <= 5.0
    sent = json.loads(sms.requests[0][4])
    assert sent["number"] == "+15550100"
    assert "monthly allowance (tier 1): your speed is 2/1 Mbps" in sent["message"]
    events = [r["event"] for r in await outbox("fay")]
    # (the documents and the journal are followed separately: their order may mix)
    assert events[0] == "fup_tier"
    assert sorted(events[1:]) == ["extra_used_up", "receipt", "receipt"]  # + credit, data
