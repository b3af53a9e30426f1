"""The operator console's use cases: find a subscriber, read everything support needs
about them, and act on them through the same use cases as the CLI.

Scope: every function takes the operator's scope (operators.scope_of) and treats a
subscriber outside it exactly like one that does not exist (404), in search, reads and
actions. Roles: actions need operators.require(op, "subscriber.write").

Idempotency: an action sent with an Idempotency-Key claims the key (a row of
operator_idempotency_keys, unique per operator) inside the action's own transaction
and stores its answer there before commit: the use case joins that transaction
(portal.store.tx), so the action and its key commit or vanish together. A second
request with the key (a double click, a retry after 503 or a lost answer) replays the
first answer; one racing the first blocks on the unique key, fails to insert and
replays.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from portal.core import (
    dashboard,
    money,
    notifications,
    operators,
    parental,
    renewal,
    subscribers,
    wallet,
)
from portal.core.billing import idempotency
from portal.core.operators import Scope
from portal.core.wifi.service import task_json
from portal.errors import NotFound, PortalError
from portal.store import db
from portal.store.models import Operator, Plan, Reseller, Subscriber, WifiTask
from portal.store.tx import transaction

SEARCH_MAX = 50
QUERY_MAX = 100
KEY_DAYS = 7  # how long an answer is kept for replay
ACTIONS = ("credit", "renew", "set_plan", "set_status", "set_password", "sign_out",
           "resend")
LOG_MAX = 200


def _not_found(username: str) -> NotFound:
    return NotFound("unknown_subscriber", f"no subscriber {username[:64]!r}")


def in_scope(reseller_id: int, scope: Scope) -> bool:
    return scope is None or reseller_id in scope


async def subscriber_in_scope(username: str, scope: Scope) -> Subscriber:
    """The subscriber, or 404 when it does not exist or lies outside the scope."""
    sub = await Subscriber.get_or_none(username=username) if len(username) <= 64 else None
    if sub is None or not in_scope(sub.reseller_id, scope):
        raise _not_found(username)
    return sub


async def usernames_in(scope: frozenset[int]) -> set[str]:
    if not scope:
        return set()
    rows = await db.fetch("SELECT username FROM subscribers WHERE reseller_id IN ("
                          + ", ".join("?" for _ in scope) + ")", sorted(scope))
    return {str(r["username"]) for r in rows}


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search(query: object, scope: Scope, limit: int = SEARCH_MAX) -> list[dict[str, Any]]:
    """Subscribers whose username, name, phone or address contains `query` (any case),
    or whose open session has `query` as its address; within the scope only."""
    if not isinstance(query, str) or not query.strip():
        return []
    text = query.strip()[:QUERY_MAX]
    pattern = _like(text)
    where = ("(LOWER(s.username) LIKE ? ESCAPE '\\' OR LOWER(s.full_name) LIKE ? ESCAPE '\\'"
             " OR LOWER(s.phone) LIKE ? ESCAPE '\\' OR LOWER(s.address) LIKE ? ESCAPE '\\'")
    params: list[Any] = [pattern, pattern, pattern, pattern]
    try:
        address = str(ipaddress.ip_address(text))
    except ValueError:
        address = None
    if address is not None:
        # radacct's address is inet on PostgreSQL (text on SQLite): compare as text.
        column = "host(framedipaddress)" if db.current_dialect() == "postgres" \
            else "framedipaddress"
        where += (" OR s.username IN (SELECT username FROM radacct WHERE acctstoptime IS NULL"
                  f" AND {column} = ?)")
        params.append(address)
    where += ")"
    if scope is not None:
        if not scope:
            return []
        where += f" AND s.reseller_id IN ({', '.join('?' for _ in scope)})"
        params += sorted(scope)
    rows = await db.fetch(
        "SELECT s.username, s.full_name, s.phone, s.address, s.status, s.expires_at,"
        " p.name AS plan, r.name AS reseller FROM subscribers s"
        " JOIN plans p ON p.id = s.plan_id JOIN resellers r ON r.id = s.reseller_id"
        f" WHERE {where} ORDER BY s.username LIMIT ?", [*params, max(1, min(limit, 200))])
    return [{"username": str(r["username"]), "full_name": str(r["full_name"]),
             "phone": str(r["phone"]), "address": str(r["address"]),
             "status": str(r["status"]), "plan": str(r["plan"]),
             "reseller": str(r["reseller"]),
             "expires_at": db.from_db_time(r["expires_at"]).isoformat()} for r in rows]


def _when(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC).isoformat(timespec="seconds")
    return db.from_db_time(value).isoformat()


async def sessions(username: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT nasipaddress, framedipaddress, acctstarttime FROM radacct"
        " WHERE username = ? AND acctstoptime IS NULL ORDER BY acctstarttime", [username])
    return [{"nas": str(r["nasipaddress"] or ""), "address": str(r["framedipaddress"] or ""),
             "since": _when(r["acctstarttime"])} for r in rows]


async def enforcement(username: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT target, state, desired_action, desired_down_kbps, desired_up_kbps, reason,"
        " applied_down_kbps, applied_up_kbps, applied_at, attempts, last_error"
        " FROM enforcement_state WHERE username = ? ORDER BY target", [username])
    return [{"target": str(r["target"]), "state": str(r["state"]),
             "desired": f"{r['desired_action']} {r['desired_down_kbps']}/"
                        f"{r['desired_up_kbps']} ({r['reason']})",
             "applied": None if r["applied_down_kbps"] is None else
             f"{r['applied_down_kbps']}/{r['applied_up_kbps']}",
             "applied_at": _when(r["applied_at"]), "attempts": int(r["attempts"]),
             "last_error": str(r["last_error"] or "")} for r in rows]


async def view(sub: Subscriber, now: datetime, config: Any) -> dict[str, Any]:
    """Everything the subscriber page shows (read-only; every role)."""
    reseller = await Reseller.get(id=sub.reseller_id)
    usage = await dashboard.dashboard(sub, now, config)
    available = parental.categories_from_config(config)
    choice = await parental.current_choice(sub, available)
    tasks = await WifiTask.filter(subscriber_id=sub.id).order_by("-id").limit(10)
    plans = await Plan.filter(reseller_id=sub.reseller_id).order_by("price_cents", "id")
    return {
        "username": sub.username, "full_name": sub.full_name, "email": sub.email,
        "phone": sub.phone, "address": sub.address, "status": sub.status,
        "reseller": reseller.name, "currency": reseller.currency,
        "balance_cents": sub.balance_cents,
        "plan": usage["plan"], "expires_at": sub.expires_at.isoformat(),
        "cycle_start": sub.cycle_start.isoformat(), "expired": usage["expired"],
        "next_cycle": await renewal.next_cycle(sub.id),
        "today": usage["today"], "cycle": usage["cycle"], "fup": usage["fup"],
        "sessions": await sessions(sub.username),
        "enforcement": await enforcement(sub.username),
        "wallet": await wallet.history(sub.id, limit=20),
        "wifi_tasks": [task_json(t) for t in tasks],
        "parental": {"enabled": choice.enabled, "categories": list(choice.categories)},
        "plans": [{"id": p.id, "name": p.name, "price_cents": p.price_cents,
                   "down_kbps": p.down_kbps, "up_kbps": p.up_kbps} for p in plans],
    }


# --- actions ------------------------------------------------------------------------

def request_hash(action: str, username: str, params: dict[str, Any]) -> str:
    canonical = json.dumps({"action": action, "username": username, "params": params},
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


check_key = idempotency.check_key  # one rule for a valid Idempotency-Key


async def _replay(operator_id: int, key: str, digest: str) -> dict[str, Any] | None:
    rows = await db.fetch("SELECT request_hash, response FROM operator_idempotency_keys"
                          " WHERE operator_id = ? AND key = ?", [operator_id, key])
    if not rows:
        return None
    if rows[0]["request_hash"] != digest:
        raise PortalError("idempotency_key_reused",
                          "this Idempotency-Key was already used for a different request", 422)
    answer: dict[str, Any] = json.loads(str(rows[0]["response"]))
    return answer


async def keyed(op: Operator, key: str | None, digest: str, lock: str, now: datetime,
                do: Callable[[], Awaitable[dict[str, Any]]]) -> tuple[dict[str, Any], bool]:
    """Run `do` (a use case) once per (operator, key): (answer, replayed)."""
    if key is not None:
        prior = await _replay(op.id, key, digest)
        if prior is not None:
            return prior, True

    async def step(tx: BaseDBAsyncClient) -> dict[str, Any]:
        row = None
        if key is not None:
            # Answers older than KEY_DAYS are no use to any retry.
            await db.execute("DELETE FROM operator_idempotency_keys WHERE operator_id = ?"
                             " AND created_at < ?",
                             [op.id, db.db_time(now - timedelta(days=KEY_DAYS))])
            rows = await db.fetch(
                "INSERT INTO operator_idempotency_keys (operator_id, key, request_hash, status,"
                " response, created_at) VALUES (?, ?, ?, 0, 'null', ?) RETURNING id",
                [op.id, key, digest, db.db_time(now)])
            row = int(rows[0]["id"])
        answer = await do()  # the use case joins this transaction
        if row is not None:
            await db.execute("UPDATE operator_idempotency_keys SET status = 200, response = ?"
                             " WHERE id = ?", [json.dumps(answer, sort_keys=True), row])
        return answer

    try:
        return await transaction(step, lock=lock), False
    except IntegrityError:
        if key is None:
            raise
        prior = await _replay(op.id, key, digest)
        if prior is None:
            raise
        return prior, True


def _text(body: dict[str, Any], name: str, limit: int, required: bool = True) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise PortalError(f"invalid_{name}", f"{name} must be text of 1-{limit} characters"
                          if required else f"{name} must be text of at most {limit}"
                          " characters", 422)
    return value.strip() if name != "password" else value


def params_of(action: str, body: dict[str, Any], currency: str = "USD") -> dict[str, Any]:
    """The validated parameters of one action (422 on anything else)."""
    if action == "credit":
        amount = body.get("amount")
        # A JSON number arrives as a float; its shortest repr is the text the client
        # sent (12.5 -> '12.5'), which parse_amount then reads exactly, as Decimal.
        if isinstance(amount, float):
            amount = repr(amount)
        if not isinstance(amount, str | int) or isinstance(amount, bool):
            raise PortalError("invalid_amount", "amount must be a number such as 12.50", 422)
        return {"amount_cents": money.parse_amount(amount, currency=currency),
                "reference": _text(body, "reference", 128, required=False)}
    if action == "renew":
        paid_by = body.get("paid_by", "wallet")
        if paid_by not in renewal.PAID_BY:
            raise PortalError("invalid_payment", "paid_by is wallet, cash or free", 422)
        reference = _text(body, "reference", 128, required=False)
        return {"paid_by": paid_by, "reference": reference}
    if action == "set_plan":
        plan = body.get("plan_id")
        if not isinstance(plan, int) or isinstance(plan, bool) or not 0 < plan < 2**31:
            raise PortalError("invalid_plan", "plan_id must be a plan's id", 422)
        return {"plan_id": plan}
    if action == "set_status":
        status = body.get("status")
        if status not in subscribers.STATUSES:
            raise PortalError("invalid_status", "status is active or disabled", 422)
        return {"status": status}
    if action == "set_password":
        return {"password": subscribers.check_password(_text(body, "password", 128))}
    if action == "sign_out":
        return {}
    if action == "resend":
        notification = body.get("notification_id")
        if not isinstance(notification, int) or isinstance(notification, bool) \
                or not 0 < notification < 2**63:
            raise PortalError("invalid_notification",
                              "notification_id must be a notification's id", 422)
        return {"notification_id": notification}
    raise NotFound("unknown_action", "no such action")


async def act(op: Operator, scope: Scope, username: str, action: str, body: dict[str, Any],
              key: str | None, ip: str, now: datetime) -> tuple[dict[str, Any], bool]:
    """One confirmed action on a subscriber: scope (404), role (403), validation (422),
    then the CLI's use case, audited as `operator:<name>`, at most once per key."""
    sub = await subscriber_in_scope(username, scope)
    operators.require(op, "subscriber.write")
    params = params_of(action, body, (await sub.reseller).currency)
    actor = f"operator:{op.username}"
    digest = request_hash(action, sub.username, params)

    async def do() -> dict[str, Any]:
        if action == "credit":
            balance = await subscribers.credit(sub.username, params["amount_cents"],
                                               params["reference"], actor=actor)
            return {"balance_cents": balance}
        if action == "renew":
            result, _ = await renewal.renew(sub.id, now, paid_by=params["paid_by"],
                                            reference=params["reference"], actor=actor, ip=ip)
            return {"balance_cents": result["balance_cents"],
                    "expires_at": result["renewal"]["expires_at"],
                    "next_cycle_paid": result["renewal"]["next_cycle_paid"]}
        if action == "set_plan":
            plan = await Plan.get_or_none(id=params["plan_id"], reseller_id=sub.reseller_id)
            if plan is None:
                raise NotFound("unknown_plan", "no such plan for this subscriber's reseller")
            await subscribers.set_plan(sub.username, str(plan.id), actor=actor, now=now)
            return {"plan": plan.name}
        if action == "set_status":
            await subscribers.set_status(sub.username, params["status"], actor=actor, now=now)
            return {"status": params["status"]}
        if action == "set_password":
            await subscribers.set_password(sub.username, params["password"], actor=actor)
            return {"password_changed": True}
        if action == "resend":  # the CLI's use case, limited to this subscriber's messages
            copy = await notifications.resend(params["notification_id"], actor,
                                              username=sub.username)
            return {"notification_id": params["notification_id"], "copy_id": copy}
        await subscribers.sign_out(sub.username, actor=actor)
        return {"signed_out": True}

    answer, replayed = await keyed(op, key, digest, sub.username, now, do)
    return {"action": action, "username": sub.username, **answer}, replayed


async def audit(username: str, scope: Scope, limit: int = 50) -> list[dict[str, Any]]:
    """The subscriber's audit rows, newest first: who did what (operator names)."""
    sub = await subscriber_in_scope(username, scope)
    rows = await db.fetch("SELECT created_at, actor, action, detail FROM audit_log"
                          " WHERE username = ? ORDER BY id DESC LIMIT ?",
                          [sub.username, max(1, min(limit, 200))])
    return [{"created_at": db.from_db_time(r["created_at"]).isoformat(),
             "actor": str(r["actor"]), "action": str(r["action"]),
             "detail": str(r["detail"] or "")} for r in rows]


async def notification_log(username: str, scope: Scope, limit: int = 50
                           ) -> list[dict[str, Any]]:
    """The subscriber's notifications, newest first (`ispedge notifications log`): event,
    channel, target, state, attempts, last error, when created and sent, and which
    message a copy resends. Every role reads it; resending is the action `resend`."""
    sub = await subscriber_in_scope(username, scope)
    rows = await notifications.log(sub.username, max(1, min(limit, LOG_MAX)))
    return [{"id": int(r["id"]), "event": str(r["event"]), "channel": str(r["channel"]),
             "target": str(r["target"]), "subject": str(r["subject"]),
             "state": str(r["state"]), "attempts": int(r["attempts"]),
             "last_error": str(r["last_error"] or ""), "created_at": r["created_at"],
             "sent_at": r["sent_at"],
             "resend_of": None if r["resend_of"] is None else int(r["resend_of"])}
            for r in rows]
