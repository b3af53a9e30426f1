"""Notifications to subscribers, the domain side (issue 22).

What a subscriber chooses (channels, quiet hours), the browsers' push
subscriptions, the VAPID key pair every portal and notifier shares, the
notification log and its resend. Sending is the notifier daemon's job
(portal/notifier); the wording is portal.core.notify_templates.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tortoise.backends.base.client import BaseDBAsyncClient

from portal.errors import Conflict, NotFound, PortalError
from portal.store import db, journal
from portal.store.tx import transaction

CHANNELS = ("email", "sms", "push")
HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
ENDPOINT_MAX = 1000
PUSH_PER_SUBSCRIBER = 10  # browsers a subscriber may register (oldest dropped past it)


@dataclass(frozen=True)
class Prefs:
    email: bool = True
    sms: bool = True
    push: bool = True
    quiet_start: str = ""  # "HH:MM" local time; both empty: no quiet hours
    quiet_end: str = ""

    def wants(self, channel: str) -> bool:
        return bool(getattr(self, channel))

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def check_prefs(data: object) -> Prefs:
    """A request's preferences -> Prefs, or a PortalError a subscriber understands."""
    if not isinstance(data, dict):
        raise PortalError("invalid_preferences", "expected an object of preferences")
    unknown = set(data) - {"email", "sms", "push", "quiet_start", "quiet_end"}
    if unknown:
        raise PortalError("invalid_preferences", f"unknown field {sorted(unknown)[0][:40]!r}")
    values: dict[str, Any] = {}
    for channel in CHANNELS:
        value = data.get(channel, True)
        if not isinstance(value, bool):
            raise PortalError("invalid_preferences", f"{channel}: expected true or false")
        values[channel] = value
    for key in ("quiet_start", "quiet_end"):
        value = data.get(key, "")
        if not isinstance(value, str) or (value and not HHMM.fullmatch(value)):
            raise PortalError("invalid_quiet_hours", f"{key}: a time like 22:00, or empty")
        values[key] = value
    if bool(values["quiet_start"]) != bool(values["quiet_end"]):
        raise PortalError("invalid_quiet_hours", "quiet hours need both a start and an end")
    if values["quiet_start"] and values["quiet_start"] == values["quiet_end"]:
        raise PortalError("invalid_quiet_hours", "quiet hours cannot start when they end")
    return Prefs(**values)


def quiet_until(prefs: Prefs, local_now: datetime) -> datetime | None:
    """When the quiet hours around `local_now` end (a local datetime), or None when
    `local_now` is outside them. A window may span midnight (22:00-07:00)."""
    if not prefs.quiet_start:
        return None
    sh, sm = (int(x) for x in prefs.quiet_start.split(":"))
    eh, em = (int(x) for x in prefs.quiet_end.split(":"))
    start, end = sh * 60 + sm, eh * 60 + em
    minute = local_now.hour * 60 + local_now.minute
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    if start < end:
        inside = start <= minute < end
        ends = midnight + timedelta(minutes=end)
    else:
        inside = minute >= start or minute < end
        ends = midnight + timedelta(minutes=end, days=1 if minute >= start else 0)
    return ends if inside else None


async def prefs_of(usernames: list[str]) -> dict[str, Prefs]:
    """Each subscriber's preferences (defaults for those who never chose)."""
    if not usernames:
        return {}
    rows = await db.fetch(
        "SELECT username, email, sms, push, quiet_start, quiet_end FROM notification_prefs"
        f" WHERE username IN ({', '.join('?' * len(usernames))})", list(usernames))
    found = {str(r["username"]): Prefs(bool(r["email"]), bool(r["sms"]), bool(r["push"]),
                                       str(r["quiet_start"]), str(r["quiet_end"]))
             for r in rows}
    return {u: found.get(u, Prefs()) for u in usernames}


async def get_prefs(username: str) -> Prefs:
    return (await prefs_of([username]))[username]


async def set_prefs(username: str, prefs: Prefs) -> Prefs:
    async def write(tx: BaseDBAsyncClient) -> None:
        await db.execute(
            "INSERT INTO notification_prefs (username, email, sms, push, quiet_start,"
            " quiet_end, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (username)"
            " DO UPDATE SET email = excluded.email, sms = excluded.sms, push = excluded.push,"
            " quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end,"
            " updated_at = excluded.updated_at",
            [username, prefs.email, prefs.sms, prefs.push, prefs.quiet_start, prefs.quiet_end,
             time.time()])

    await transaction(write, lock=username)
    return prefs


# --- push subscriptions -------------------------------------------------------------


@dataclass(frozen=True)
class PushSubscription:
    endpoint: str
    p256dh: str
    auth: str


def _b64url(value: object, size: int, what: str) -> str:
    if not isinstance(value, str) or len(value) > 200:
        raise PortalError("invalid_subscription", f"{what}: expected base64url text")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise PortalError("invalid_subscription", f"{what}: not base64url") from None
    if len(raw) != size:
        raise PortalError("invalid_subscription", f"{what}: expected {size} bytes")
    return value


def check_push_subscription(data: object) -> PushSubscription:
    """A browser's PushSubscription JSON -> PushSubscription.

    Only https endpoints with a host name or address are taken; whether the host
    resolves to public addresses is checked by the notifier at each send (an answer
    may change), which refuses the private ones.
    """
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise PortalError("invalid_subscription", "expected {endpoint, keys: {p256dh, auth}}")
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or len(endpoint) > ENDPOINT_MAX or not endpoint.isascii():
        raise PortalError("invalid_subscription", "endpoint: expected an https URL")
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        raise PortalError("invalid_subscription", "endpoint: not a URL") from None
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password \
            or any(ord(c) < 33 or ord(c) == 127 for c in endpoint):
        raise PortalError("invalid_subscription", "endpoint: only https URLs are accepted")
    del port
    keys = data["keys"]
    p256dh = _b64url(keys.get("p256dh"), 65, "p256dh")
    if base64.urlsafe_b64decode(p256dh + "=" * (-len(p256dh) % 4))[0] != 4:
        raise PortalError("invalid_subscription", "p256dh: not an uncompressed P-256 point")
    return PushSubscription(endpoint, p256dh, _b64url(keys.get("auth"), 16, "auth"))


async def add_push_subscription(username: str, sub: PushSubscription) -> None:
    async def write(tx: BaseDBAsyncClient) -> None:
        # One endpoint is one browser: registered again (another account on it), it moves.
        await db.execute("DELETE FROM push_subscriptions WHERE endpoint = ?", [sub.endpoint])
        await db.execute(
            "INSERT INTO push_subscriptions (username, endpoint, p256dh, auth, created_at)"
            " VALUES (?, ?, ?, ?, ?)", [username, sub.endpoint, sub.p256dh, sub.auth,
                                        time.time()])
        old = await db.fetch("SELECT id FROM push_subscriptions WHERE username = ?"
                             " ORDER BY id DESC", [username])
        for row in old[PUSH_PER_SUBSCRIBER:]:
            await db.execute("DELETE FROM push_subscriptions WHERE id = ?", [row["id"]])

    await transaction(write, lock=username)


async def remove_push_subscription(username: str, endpoint: str) -> bool:
    async def write(tx: BaseDBAsyncClient) -> bool:
        rows = await db.fetch("DELETE FROM push_subscriptions WHERE username = ? AND"
                              " endpoint = ? RETURNING id", [username, endpoint])
        return bool(rows)

    return await transaction(write, lock=username)


async def push_subscriptions(usernames: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not usernames:
        return {}
    rows = await db.fetch(
        "SELECT id, username, endpoint, p256dh, auth FROM push_subscriptions"
        f" WHERE username IN ({', '.join('?' * len(usernames))}) ORDER BY id",
        list(usernames))
    out: dict[str, list[dict[str, Any]]] = {u: [] for u in usernames}
    for r in rows:
        out[str(r["username"])].append(dict(r))
    return out


# --- VAPID keys ---------------------------------------------------------------------

VAPID = "vapid"


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_b64: str  # the uncompressed point, base64url: the browser's applicationServerKey


def new_vapid_keys() -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    return KeyPair(pem, base64.urlsafe_b64encode(point).rstrip(b"=").decode())


async def vapid_keys() -> KeyPair:
    """The shared VAPID pair, generated by whichever portal or notifier asks first.

    Kept in the database (notifier_keys), not a file: every portal instance hands
    browsers the same public key that every notifier signs with.
    """
    rows = await db.fetch("SELECT private_pem, public_b64 FROM notifier_keys WHERE name = ?",
                          [VAPID])
    if not rows:
        made = new_vapid_keys()

        async def write(tx: BaseDBAsyncClient) -> None:
            await db.execute(
                "INSERT INTO notifier_keys (name, private_pem, public_b64, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                [VAPID, made.private_pem, made.public_b64, time.time()])

        await transaction(write)
        rows = await db.fetch("SELECT private_pem, public_b64 FROM notifier_keys"
                              " WHERE name = ?", [VAPID])
    return KeyPair(str(rows[0]["private_pem"]), str(rows[0]["public_b64"]))


# --- the log and resend -----------------------------------------------------------

LOG_COLUMNS = ("id, event, channel, target, subject, state, attempts, last_error,"
               " created_at, sent_at, resend_of")


def _log_row(r: dict[str, Any], for_subscriber: bool) -> dict[str, Any]:
    row = dict(r)
    for key in ("created_at", "sent_at"):
        if row.get(key) is not None:
            row[key] = datetime.fromtimestamp(float(row[key])).astimezone().isoformat(
                timespec="seconds")
    if for_subscriber:
        # A push endpoint is a browser's secret capability: the subscriber sees "browser".
        if row["channel"] == "push":
            row["target"] = "browser"
        row.pop("last_error", None)
    return row


async def log(username: str, limit: int = 50, for_subscriber: bool = False
              ) -> list[dict[str, Any]]:
    rows = await db.fetch(f"SELECT {LOG_COLUMNS} FROM notification_outbox WHERE username = ?"
                          " ORDER BY id DESC LIMIT ?", [username, limit])
    return [_log_row(r, for_subscriber) for r in rows]


IN_FLIGHT = ("pending", "claimed", "sending")  # still on its way: never copied


async def resend(outbox_id: int, actor: str, username: str | None = None) -> int:
    """Queue a copy of a logged message now (a lost, failed or 'unknown' one, or one
    the subscriber says never came); its new id. The CLI and the operator console both
    call this. `username` (the console's subscriber, already checked against the
    operator's scope) makes a notification of anyone else "not found". A message still
    on its way (pending, claimed, sending) is refused: a copy would send it twice."""
    owner = await db.fetch("SELECT username FROM notification_outbox WHERE id = ?",
                           [outbox_id])
    if not owner or (username is not None and str(owner[0]["username"]) != username):
        raise NotFound("no_such_notification", f"no notification #{outbox_id}")

    async def write(tx: BaseDBAsyncClient) -> int:
        rows = await db.fetch("SELECT * FROM notification_outbox WHERE id = ?", [outbox_id])
        if not rows:
            raise NotFound("no_such_notification", f"no notification #{outbox_id}")
        r = rows[0]
        if r["state"] in IN_FLIGHT:
            raise Conflict("notification_in_flight",
                           f"notification #{outbox_id} is still being sent ({r['state']}):"
                           " it needs no copy")
        n = await db.fetch("SELECT COUNT(*) AS n FROM notification_outbox WHERE resend_of = ?",
                           [outbox_id])
        now = time.time()
        made = await db.fetch(
            "INSERT INTO notification_outbox (username, event, channel, target, dedup_key,"
            " language, subject, body, state, attempts, next_try_at, created_at, resend_of)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) RETURNING id",
            [r["username"], r["event"], r["channel"], r["target"],
             f"resend:{outbox_id}:{int(n[0]['n']) + 1}", r["language"], r["subject"],
             r["body"], now, now, outbox_id])
        await journal.audit(tx, actor, "notification.resend", str(r["username"]),
                            notification=outbox_id, copy=int(made[0]["id"]))
        return int(made[0]["id"])

    # Locked on the subscriber (PostgreSQL): two resends of one message count their
    # copies one after the other, so their de-duplication keys differ.
    return await transaction(write, lock=str(owner[0]["username"]))
