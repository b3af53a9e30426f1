"""Support tickets: customers open and reply, operators answer, note and close.

Text is stored exactly as given (templates and the JS escape it on output).
Status: open (waiting for us) -> answered (waiting for the customer) -> closed;
a customer reply makes any ticket open again. Operator notes (internal) never
reach the customer. New tickets and replies are rate limited per subscriber with
the database as memory.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.core import support_diagnostics
from portal.core.operators import Scope
from portal.errors import NotFound, PortalError, TooManyRequests
from portal.store import journal
from portal.store.models import Subscriber, Ticket, TicketMessage
from portal.store.tx import transaction

CATEGORIES = {"slow": "Slow internet", "no_connection": "No connection", "billing": "Billing",
              "wifi": "WiFi", "other": "Other"}
STATUSES = ("open", "answered", "closed")
SUBJECT_MAX = 200
BODY_MAX = 5000
TICKETS_PER_HOUR = 5
MESSAGES_PER_HOUR = 30
WINDOW = timedelta(hours=1)


def check_text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PortalError(f"missing_{name}", f"please write a {name}", 422)
    if len(value) > limit:
        raise PortalError(f"{name}_too_long", f"the {name} can be at most {limit} characters",
                          422)
    if "\x00" in value:
        raise PortalError(f"invalid_{name}", f"the {name} contains an invalid character", 422)
    return value


def check_category(value: object) -> str:
    if value not in CATEGORIES:
        raise PortalError("invalid_category", "choose a category: " +
                          ", ".join(CATEGORIES.values()), 422)
    return str(value)


def _limited(what: str, per_hour: int, oldest: datetime, now: datetime) -> TooManyRequests:
    seconds = max(1, int((oldest + WINDOW - now).total_seconds()) + 1)
    return TooManyRequests("rate_limited", f"you can send {per_hour} {what} per hour; please try "
                           f"again in {(seconds + 59) // 60} minute(s)", retry_after=seconds)


async def open_ticket(sub: Subscriber, category: object, subject: object, body: object,
                      ip: str = "", now: datetime | None = None, config: Any = None) -> Ticket:
    now = now or datetime.now(UTC)
    category = check_category(category)
    subject = check_text(subject, "subject", SUBJECT_MAX)
    body = check_text(body, "message", BODY_MAX)
    # Plan speed, live rate and FUP tier, as they are now: what support needs first.
    diag = json.dumps(await support_diagnostics.collect(sub, now, config), sort_keys=True,
                      default=str) if category == "slow" else ""
    # The subscriber's row is locked (PostgreSQL; SQLite has one writer): concurrent
    # requests cannot both take the last slot of the hour.
    async def write(tx: BaseDBAsyncClient) -> Ticket:
        ticket = await Ticket.create(subscriber_id=sub.id, category=category, subject=subject,
                                     status="open", diagnostics=diag, created_at=now,
                                     updated_at=now, using_db=tx)
        # Counted after our own insert, in the same transaction: the 6th loses.
        recent = await Ticket.filter(subscriber_id=sub.id, created_at__gt=now - WINDOW) \
            .using_db(tx).order_by("created_at").values_list("created_at", flat=True)
        if len(recent) > TICKETS_PER_HOUR:
            oldest = cast(datetime, recent[0])  # values_list(flat=True): the values
            raise _limited("new tickets", TICKETS_PER_HOUR, oldest, now)  # rolls back
        await TicketMessage.create(ticket_id=ticket.id, author_kind="customer",
                                   author=sub.username, body=body, internal=False,
                                   created_at=now, using_db=tx)
        await journal.audit(tx, f"customer:{sub.username}", "ticket.open", sub.username, ip=ip,
                            ticket=ticket.id, category=category)
        return ticket

    return await transaction(write, lock=sub.username)


async def customer_reply(sub: Subscriber, ticket_id: int, body: object, ip: str = "",
                         now: datetime | None = None) -> Ticket:
    now = now or datetime.now(UTC)
    body = check_text(body, "message", BODY_MAX)
    ticket = await own_ticket(sub, ticket_id)

    async def write(tx: BaseDBAsyncClient) -> None:
        msg = await TicketMessage.create(ticket_id=ticket.id, author_kind="customer",
                                         author=sub.username, body=body, internal=False,
                                         created_at=now, using_db=tx)
        recent = await TicketMessage.filter(
            ticket__subscriber_id=sub.id, author_kind="customer", created_at__gt=now - WINDOW,
            id__lte=msg.id).using_db(tx).order_by("created_at") \
            .values_list("created_at", flat=True)
        if len(recent) > MESSAGES_PER_HOUR:
            oldest = cast(datetime, recent[0])
            raise _limited("messages", MESSAGES_PER_HOUR, oldest, now)
        await Ticket.filter(id=ticket.id).using_db(tx).update(status="open", updated_at=now)
        await journal.audit(tx, f"customer:{sub.username}", "ticket.reply", sub.username, ip=ip,
                            ticket=ticket.id, reopened=ticket.status == "closed")

    await transaction(write, lock=sub.username)
    return await Ticket.get(id=ticket.id)


async def own_ticket(sub: Subscriber, ticket_id: int) -> Ticket:
    """A ticket of THIS subscriber; anyone else's is simply not found."""
    ticket = await Ticket.get_or_none(id=ticket_id, subscriber_id=sub.id)
    if ticket is None:
        raise NotFound("no_such_ticket", "no such ticket")
    return ticket


async def get_ticket(ticket_id: int, scope: Scope = None) -> Ticket:
    """A ticket an operator with this scope may see; others are simply not found."""
    query = Ticket.filter(id=ticket_id)
    if scope is not None:
        query = query.filter(subscriber__reseller_id__in=list(scope))
    ticket = await query.first()
    if ticket is None:
        raise NotFound("no_such_ticket", f"no ticket #{ticket_id}")
    return ticket


async def operator_reply(operator: str, ticket_id: int, body: object, internal: bool = False,
                         ip: str = "", now: datetime | None = None, scope: Scope = None
                         ) -> Ticket:
    now = now or datetime.now(UTC)
    body = check_text(body, "message", BODY_MAX)
    ticket = await get_ticket(ticket_id, scope)

    async def write(tx: BaseDBAsyncClient) -> None:
        msg = await TicketMessage.create(ticket_id=ticket.id, author_kind="operator",
                                         author=operator, body=body, internal=internal,
                                         created_at=now, using_db=tx)
        sub = await Subscriber.get(id=ticket.subscriber_id, using_db=tx)
        if not internal:
            # The subscriber is told of an answer (portal/notifier), never of a note.
            await journal.record(tx, sub.username, "ticket", ticket_id=ticket.id,
                                 message_id=msg.id)
            # An answer to a closed ticket leaves it closed: the customer may reopen it.
            status = "closed" if ticket.status == "closed" else "answered"
            await Ticket.filter(id=ticket.id).using_db(tx).update(status=status, updated_at=now)
        await journal.audit(tx, f"operator:{operator}", "ticket.note" if internal
                            else "ticket.answer", sub.username, ip=ip, ticket=ticket.id)

    await transaction(write)
    return await Ticket.get(id=ticket.id)


async def close(operator: str, ticket_id: int, ip: str = "", now: datetime | None = None,
                scope: Scope = None) -> Ticket:
    now = now or datetime.now(UTC)
    ticket = await get_ticket(ticket_id, scope)

    async def write(tx: BaseDBAsyncClient) -> None:
        await Ticket.filter(id=ticket.id).using_db(tx).update(status="closed", updated_at=now)
        sub = await Subscriber.get(id=ticket.subscriber_id, using_db=tx)
        await journal.audit(tx, f"operator:{operator}", "ticket.close", sub.username, ip=ip,
                            ticket=ticket.id)

    await transaction(write)
    return await Ticket.get(id=ticket.id)


# --- views ------------------------------------------------------------------------------

def summary_json(ticket: Ticket) -> dict[str, Any]:
    return {"id": ticket.id, "category": ticket.category,
            "category_label": CATEGORIES[ticket.category], "subject": ticket.subject,
            "status": ticket.status, "created_at": ticket.created_at.isoformat(),
            "updated_at": ticket.updated_at.isoformat()}


async def thread_json(ticket: Ticket, for_operator: bool) -> dict[str, Any]:
    query = TicketMessage.filter(ticket_id=ticket.id).order_by("id")
    if not for_operator:
        query = query.filter(internal=False)
    messages = [{"id": m.id, "author_kind": m.author_kind,
                 # Customers see "Support", not an operator's login name.
                 "author": m.author if for_operator or m.author_kind == "customer"
                 else "Support", "body": m.body, "internal": m.internal,
                 "created_at": m.created_at.isoformat()} for m in await query]
    if not for_operator:
        for m in messages:
            del m["internal"]
    out = summary_json(ticket) | {"messages": messages}
    out["diagnostics"] = json.loads(ticket.diagnostics) if ticket.diagnostics else None
    if for_operator:
        sub = await Subscriber.get(id=ticket.subscriber_id)
        out["username"] = sub.username
    return out


async def customer_list(sub: Subscriber) -> list[dict[str, Any]]:
    rows = await Ticket.filter(subscriber_id=sub.id).order_by("-updated_at", "-id").limit(100)
    return [summary_json(t) for t in rows]


async def operator_list(status: str | None = None, limit: int = 200, scope: Scope = None,
                        reseller: str | None = None, min_age_hours: int | None = None,
                        now: datetime | None = None) -> list[dict[str, Any]]:
    """The inbox, newest activity first: by status, by reseller (its name; one outside
    the scope shows nothing) and by age (waiting at least min_age_hours since the last
    message)."""
    if status is not None and status not in STATUSES:
        raise PortalError("invalid_status", "status must be open, answered or closed", 422)
    if min_age_hours is not None and not 0 <= min_age_hours <= 24 * 3660:
        raise PortalError("invalid_age", "age is 0 or more hours", 422)
    query = Ticket.all().prefetch_related("subscriber", "subscriber__reseller") \
        .order_by("-updated_at", "-id")
    if scope is not None:
        query = query.filter(subscriber__reseller_id__in=list(scope))
    if status:
        query = query.filter(status=status)
    if reseller:
        query = query.filter(subscriber__reseller__name=reseller[:64])
    if min_age_hours:
        query = query.filter(updated_at__lte=(now or datetime.now(UTC))
                             - timedelta(hours=min_age_hours))
    return [summary_json(t) | {"username": t.subscriber.username,
                               "reseller": t.subscriber.reseller.name}
            for t in await query.limit(limit)]
