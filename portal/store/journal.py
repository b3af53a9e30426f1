"""The change journal and its contract; the audit log.

Every portal action that changes what the network must do writes the business
change AND a journal row in ONE transaction (`record`, or `record_many` for a
batch). Followers (the enforcer, dns_filter's resolver) poll `id > cursor` and
act on the kinds they follow.

The contract is one document, dns_filter/journal_contract.json (package data of
dns_filter, so the resolver reads it without importing portal; portal reads it
from there, never the other way round). It declares:

- kinds: each kind's payload fields (required, optional), the origins that may
  write it and the followers that act on it;
- origins: who wrote a row (column `origin`: portal, cli, enforcer, ingest);
- followers: enforcer and resolver, and the origin each writes itself (a
  follower skips its own rows: the enforcer skips origin 'enforcer').

`record` and `record_many` refuse (ValueError, nothing written) an unknown kind,
a payload key the kind does not declare, a missing required key, or an origin
that may not write that kind. The enforcer's followed kinds are
`CONTRACT.followed_by("enforcer")`; dns_filter derives the resolver's from the
same file (dns_filter.policy_db.followed_kinds).

A row's origin is the `origin=` argument, else the one set with `writing_as`
for the current context (the CLI runs each command inside `writing_as(CLI)`),
else 'portal'.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

from tortoise import timezone
from tortoise.backends.base.client import BaseDBAsyncClient

from dns_filter import gapcursor
from dns_filter.gapcursor import GapCursor
from portal.store import db, follow

CONTRACT_PACKAGE = "dns_filter"
CONTRACT_FILE = "journal_contract.json"


@dataclass(frozen=True)
class Kind:
    name: str
    required: frozenset[str]
    optional: frozenset[str]
    origins: frozenset[str]
    followers: frozenset[str]


@dataclass(frozen=True)
class Contract:
    kinds: Mapping[str, Kind]
    origins: frozenset[str]
    own_origins: Mapping[str, str | None]  # follower -> the origin of the rows it writes
    columns: tuple[str, ...]

    def followed_by(self, follower: str) -> frozenset[str]:
        if follower not in self.own_origins:
            raise ValueError(f"unknown journal follower {follower!r}")
        return frozenset(k.name for k in self.kinds.values() if follower in k.followers)

    def check(self, kind: str, origin: str, payload: Mapping[str, Any]) -> None:
        spec = self.kinds.get(kind)
        if spec is None:
            raise ValueError(f"unknown journal kind {kind!r}")
        if origin not in spec.origins:
            raise ValueError(f"journal kind {kind!r} is not written by origin {origin!r} "
                             f"(contract: {', '.join(sorted(spec.origins))})")
        keys = payload.keys()
        unknown = keys - spec.required - spec.optional
        if unknown:
            raise ValueError(f"journal kind {kind!r}: unknown payload keys "
                             f"{', '.join(sorted(unknown))}")
        missing = spec.required - keys
        if missing:
            raise ValueError(f"journal kind {kind!r}: missing payload keys "
                             f"{', '.join(sorted(missing))}")


def parse_contract(text: str) -> Contract:
    """The contract document -> Contract; ValueError if it contradicts itself."""
    doc = json.loads(text)
    origins = frozenset(doc["origins"])
    own = {name: f.get("own_origin") for name, f in doc["followers"].items()}
    kinds = {}
    for name, spec in doc["kinds"].items():
        kind = Kind(name, frozenset(spec["payload"]["required"]),
                    frozenset(spec["payload"]["optional"]), frozenset(spec["origins"]),
                    frozenset(spec["followers"]))
        if kind.required & kind.optional:
            raise ValueError(f"journal contract: {name}: a payload field both required and "
                             "optional")
        if not kind.origins <= origins or not kind.followers <= own.keys():
            raise ValueError(f"journal contract: {name}: undeclared origin or follower")
        kinds[name] = kind
    if not {o for o in own.values() if o is not None} <= origins:
        raise ValueError("journal contract: a follower's own origin is not declared")
    return Contract(kinds, origins, own, tuple(doc["columns"]))


def contract_text() -> str:
    return resources.files(CONTRACT_PACKAGE).joinpath(CONTRACT_FILE).read_text(encoding="utf-8")


CONTRACT = parse_contract(contract_text())
KINDS = frozenset(CONTRACT.kinds)

# Origins the code names (each must be declared in the contract).
PORTAL, CLI, ENFORCER, INGEST = "portal", "cli", "enforcer", "ingest"
if not {PORTAL, CLI, ENFORCER, INGEST} <= CONTRACT.origins:
    raise ValueError("journal contract: origins portal, cli, enforcer and ingest must exist")

_origin: ContextVar[str] = ContextVar("journal_origin", default=PORTAL)


@contextmanager
def writing_as(origin: str) -> Iterator[None]:
    """Rows recorded in this context without an explicit origin say `origin`."""
    if origin not in CONTRACT.origins:
        raise ValueError(f"unknown journal origin {origin!r}")
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


class Entry(NamedTuple):
    """One row for `record_many`."""

    username: str | None
    kind: str
    payload: Mapping[str, Any]


async def record(
    tx: BaseDBAsyncClient, username: str | None, kind: str, /, *, origin: str | None = None,
    **payload: Any,
) -> None:
    origin = _origin.get() if origin is None else origin
    CONTRACT.check(kind, origin, payload)
    # Plain SQL in the caller's transaction (tx): every purchase records a row, and the
    # ORM's create cost more than the statement. created_at as auto_now_add stores it.
    await db.execute(_INSERT, [db.db_time(timezone.localtime()), username, kind,
                               json.dumps(payload, sort_keys=True), origin])


_INSERT = ("INSERT INTO change_journal (created_at, username, kind, payload, origin)"
           " VALUES (?, ?, ?, ?, ?)")


async def record_many(
    tx: BaseDBAsyncClient, rows: Iterable[Entry], *, origin: str | None = None
) -> int:
    """Many rows in one executemany (the usage ingest's sessions, the enforcer's speeds).

    Every row is checked before any is written. Returns the number of rows.
    """
    origin = _origin.get() if origin is None else origin
    created_at = timezone.localtime()  # what the model's auto_now_add would store
    values: list[list[object]] = []
    for username, kind, payload in rows:
        CONTRACT.check(kind, origin, payload)
        values.append([created_at, username, kind, json.dumps(dict(payload), sort_keys=True),
                       origin])
    await db.execute_many(_INSERT, values)  # the caller's transaction (tx) runs it
    return len(values)


BATCH = gapcursor.DEFAULT_BATCH  # rows per read: a burst of 100k rows is 100 reads


async def read_batch(cursor: GapCursor, columns: str = "username, kind, origin",
                     limit: int = BATCH) -> tuple[list[dict[str, Any]], bool]:
    """The journal rows after `cursor` (and in its open gaps), id order, at most
    `limit` -- never unbounded (issue 17: a 100k-row burst read whole delayed a
    parental change by 14 s); advances the cursor. Returns (rows, batch was full)."""
    if limit < 1:
        raise ValueError("a journal batch holds at least one row")
    return await follow.read_batch(cursor, "change_journal", "id", columns, limit)


async def audit(
    tx: BaseDBAsyncClient,
    actor: str,
    action: str,
    username: str | None = None,
    ip: str = "",
    **detail: Any,
) -> None:
    await db.execute(
        "INSERT INTO audit_log (created_at, actor, action, username, detail, ip)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [db.db_time(timezone.localtime()), actor, action, username,
         json.dumps(detail, sort_keys=True, default=str), ip])
