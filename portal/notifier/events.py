"""What is worth telling a subscriber, and the outbox rows it makes.

Events come from the database only:
- journal rows (the kinds the contract says the notifier follows): a "speed" row
  with a FUP reason (tier reached; "extra data used up" when data was bought
  this cycle) and "ticket" (an operator's answer; notes never make a row);
- the invoices table, followed the same gap-safe way: every receipt, invoice or
  credit note issued (wallet credits, purchases, renewals) is told once;
- expiry dates, looked at every scan: a reminder `expiry_days` before, and one
  when the plan has expired.

Each event has a key naming what makes it unique (the journal row, the expiry
date a reminder is about), so a renewed cycle's reminders fire again while a
re-read journal or a second notifier adds nothing. `compose` turns events into
outbox rows: one per channel the subscriber wants and has an address for (and
per registered browser for push), rendered from the reseller's template in the
subscriber's language, held until their quiet hours end.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from portal.core import language, notifications, notify_templates
from portal.notifier.outbox import Message
from portal.notifier.settings import Settings
from portal.speed import facts
from portal.speed import settings as speed_settings
from portal.store import db, journal

log = logging.getLogger("ispedge.notifier")

FOLLOWED = journal.CONTRACT.followed_by("notifier")
STALE_S = 86400.0  # a journal row older than this (a notifier long stopped) is not news
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Event:
    username: str
    event: str  # one of notify_templates.EVENTS
    key: str  # what makes it unique
    values: dict[str, Any]  # the event's own template variables


def _mbps(kbps: int) -> Decimal:
    return Decimal(kbps) / 1000  # exact (2000 -> 2, 512 -> 0.512), shown per language


async def from_journal(rows: list[dict[str, Any]], now: datetime) -> list[Event]:
    """The journal rows the notifier follows -> events (others are ignored)."""
    out: list[tuple[int, Event]] = []  # (journal id, event): kept in journal order
    fup: list[tuple[dict[str, Any], dict[str, Any]]] = []
    tickets: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for r in rows:
        if r["kind"] not in FOLLOWED or not r.get("username"):
            continue
        created = db.from_db_time(r["created_at"])
        if (now - created).total_seconds() > STALE_S:
            continue
        try:
            payload = json.loads(r["payload"])
        except ValueError:
            continue
        if r["kind"] == "speed" and str(payload.get("reason", "")).startswith("fup:"):
            fup.append((r, payload))
        elif r["kind"] == "ticket":
            tickets.append((r, payload))
    if fup:
        cfg = speed_settings.current()
        known = await facts.subscriber_facts(sorted({str(r["username"]) for r, _ in fup}), now,
                                             ZoneInfo(cfg.timezone), cfg.cycle)
        for r, p in fup:
            _, period, tier = str(p["reason"]).split(":", 2)
            f = known.get(str(r["username"]))
            bought = f is not None and f.bonus_bytes > 0 and period == "monthly"
            out.append((int(r["id"]), Event(
                str(r["username"]), "extra_used_up" if bought else "fup_tier",
                f"journal:{r['id']}", {"period": period, "tier": int(tier),
                                       "down_mbps": _mbps(int(p["down_kbps"])),
                                       "up_mbps": _mbps(int(p["up_kbps"]))})))
    if tickets:
        ids = sorted({int(p["ticket_id"]) for _, p in tickets})
        subjects = {int(t["id"]): str(t["subject"]) for t in await db.fetch(
            f"SELECT id, subject FROM tickets WHERE id IN ({', '.join('?' * len(ids))})", ids)}
        for r, p in tickets:
            out.append((int(r["id"]), Event(
                str(r["username"]), "ticket_answered", f"msg:{p['message_id']}", {
                    "ticket_id": int(p["ticket_id"]),
                    "ticket_subject": subjects.get(int(p["ticket_id"]), "")})))
    return [e for _, e in sorted(out, key=lambda pair: pair[0])]


def from_invoices(rows: list[dict[str, Any]], now: datetime) -> list[Event]:
    """Documents issued (the invoices table, followed like the journal): a receipt for
    money received, the invoice of a purchase or renewal, a credit note."""
    out: list[Event] = []
    for r in rows:
        if (now - db.from_db_time(r["issued_at"])).total_seconds() > STALE_S:
            continue
        # The kind and the amount in minor units: notify_templates shows them in the
        # subscriber's language (a word; the currency's digits, CLDR separators).
        out.append(Event(str(r["username"]), "receipt", f"doc:{r['number']}", {
            "number": str(r["number"]), "document": str(r["kind"]),
            "amount": notify_templates.Amount(int(r["total_cents"]), str(r["currency"])),
            "currency": str(r["currency"])}))
    return out


async def expiry(settings: Settings, now: datetime) -> list[Event]:
    """Reminders due now: the smallest of `expiry_days` the time left is within, and
    'expired' for a plan that expired in the last day. A subscriber with a prepaid
    next cycle waiting is not reminded (the enforcer rolls it over)."""
    if not settings.expiry_days:
        horizon = now
    else:
        horizon = now + timedelta(days=max(settings.expiry_days))
    rows = await db.fetch(
        "SELECT s.username, s.expires_at, p.name AS plan FROM subscribers s"
        " JOIN plans p ON p.id = s.plan_id WHERE s.status = 'active'"
        " AND s.expires_at > ? AND s.expires_at <= ?"
        " AND NOT EXISTS (SELECT 1 FROM prepaid_cycles c WHERE c.subscriber_id = s.id"
        " AND c.started_at IS NULL)",
        [db.db_time(now - timedelta(days=1)), db.db_time(horizon)])
    tz = ZoneInfo(settings.timezone)
    out: list[Event] = []
    for r in rows:
        expires = db.from_db_time(r["expires_at"])
        on = expires.astimezone(tz).date()  # shown per language
        stamp = expires.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
        if expires <= now:
            out.append(Event(str(r["username"]), "expired", f"expired:{stamp}",
                             {"expires_on": on, "plan": str(r["plan"])}))
            continue
        left = expires - now
        within = [d for d in settings.expiry_days if left <= timedelta(days=d)]
        if within:
            days = min(within)
            out.append(Event(str(r["username"]), "expiry_soon", f"expiry:{days}:{stamp}",
                             {"days": days, "expires_on": on, "plan": str(r["plan"])}))
    return out


async def compose(events: list[Event], settings: Settings, now: datetime) -> list[Message]:
    if not events:
        return []
    names = sorted({e.username for e in events})
    subs = {str(r["username"]): r for r in await db.fetch(
        "SELECT s.username, s.full_name, s.email, s.phone, s.reseller_id, s.language,"
        " r.name AS reseller, r.company_name, r.default_language"
        " FROM subscribers s JOIN resellers r ON r.id = s.reseller_id"
        f" WHERE s.username IN ({', '.join('?' * len(names))})", names)}
    prefs = await notifications.prefs_of(names)
    pushes = await notifications.push_subscriptions(names) if settings.enabled("push") else {}
    # One rule for the subscriber's language (portal.core.language): their choice, else
    # their reseller's default, else English; templates fall back to 'en' in turn.
    langs = {u: language.resolve(s["language"], s["default_language"]) for u, s in subs.items()}
    stored = await notify_templates.custom_templates(
        [int(s["reseller_id"]) for s in subs.values()], list(langs.values()))
    tz = ZoneInfo(settings.timezone)
    out: list[Message] = []
    for e in events:
        sub = subs.get(e.username)
        if sub is None:
            continue
        pref = prefs[e.username]
        quiet = notifications.quiet_until(pref, now.astimezone(tz))
        at = (quiet or now).timestamp()
        values = {"name": str(sub["full_name"]) or e.username, "username": e.username,
                  "company": str(sub["company_name"] or sub["reseller"]),
                  "portal_url": settings.portal_url, **e.values}
        targets: list[tuple[str, str]] = []
        if settings.enabled("email") and pref.email and EMAIL.fullmatch(str(sub["email"])):
            targets.append(("email", str(sub["email"])))
        if settings.enabled("sms") and pref.sms and str(sub["phone"]).strip():
            targets.append(("sms", str(sub["phone"]).strip()))
        if settings.enabled("push") and pref.push:
            targets += [("push", f"sub:{p['id']}") for p in pushes.get(e.username, [])]
        lang = langs.get(e.username, notify_templates.FALLBACK_LANGUAGE)
        for channel, target in targets:
            custom = notify_templates.pick(stored, int(sub["reseller_id"]), lang, e.event,
                                           channel)
            try:
                text = notify_templates.render(e.event, channel, values, custom, lang)
            except Exception as exc:  # a stored template that no longer renders
                log.warning("template %s/%s/%s for %s: %s; built-in text used", lang,
                            e.event, channel, e.username, exc)
                text = notify_templates.render(e.event, channel, values, None, lang)
            out.append(Message(e.username, e.event, channel, target,
                               f"{e.event}:{e.username}:{e.key}:{channel}:{target}", lang,
                               text.subject, text.body, at))
    return out
