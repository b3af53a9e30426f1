"""A follower's cursor over an id-ordered table that never skips a row committing late.

The change journal and the accounting change table (radacct_changes) are read as
`id > cursor`. Which ids are visible depends on the database:

- SQLite: every writer holds the one write lock from its first write to its
  commit (BEGIN IMMEDIATE in portal.store.tx; FreeRADIUS's autocommit inserts the
  same), and an id is assigned by the insert under that lock. So commit order IS
  id order: a reader sees a prefix of the ids, and an id missing below the
  highest one seen was rolled back and never comes. No gaps to remember.
- PostgreSQL: ids come from a sequence when the row is inserted, but a
  transaction that took an id may commit after one that took a higher id. A
  reader that moved a plain `max(id)` cursor would skip the late one. So the
  ids missing below the highest id seen are remembered as open gaps, each with
  the xmax of the snapshot of the read that first found it missing (every
  transaction that had an id then has an xid below that xmax). Each poll re-reads
  the open gaps along with the new ids. A gap is closed when it is read, or
  dropped once the xmin of a later read's snapshot has reached its xmax (every
  transaction that could hold the id has ended: it committed and that read saw
  it, or it aborted) and it has been open for `grace_s` (an inserter may be
  between taking the id and getting its xid when the gap is first found; that
  window is microseconds, the grace is seconds).

The rule is plain values in, plain values out: the resolver (psycopg/sqlite3)
and the portal (Tortoise) each run the read (`read_sql`) and hand the ids and
the read's snapshot to `advance`. dns_filter is a mechanism and never imports
portal; portal imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_BATCH = 1000  # rows per read: a backlog is taken in bounded steps
DEFAULT_GRACE_S = 2.0
MAX_NEW_GAPS = 10000  # ids examined below a read's highest id for new gaps
START_LOOKBACK = 1000  # ids below the head examined for open gaps when a follower starts


@dataclass(frozen=True)
class Snapshot:
    """pg_current_snapshot() of the statement that read the rows."""

    xmin: int  # every xid below this had ended when the read ran
    xmax: int  # every xid at or above this had not started


@dataclass(frozen=True)
class Gap:
    xmax: int  # the snapshot xmax of the read that first found the id missing
    first_seen: float  # monotonic seconds


@dataclass
class GapCursor:
    """Highest id seen + the ids below it that may still commit (PostgreSQL only)."""

    high: int = 0
    gaps: dict[int, Gap] = field(default_factory=dict)
    grace_s: float = DEFAULT_GRACE_S

    def open_gaps(self) -> list[int]:
        """The ids to re-read with the next batch (sorted)."""
        return sorted(self.gaps)

    def advance(self, ids: Iterable[int], snapshot: Snapshot | None, now: float,
                limit: int | None = None) -> list[int]:
        """Take one read's ids; returns those new to this cursor, in id order.

        `ids` are what a read of `id > high OR id IN open_gaps()` ORDER BY id LIMIT
        `limit` returned; `snapshot` is that read's snapshot (None: SQLite, no gaps).
        A full batch (len == limit) examined ids only up to its last one.
        """
        got = sorted(set(ids))
        examined = got[-1] if limit is not None and len(got) >= limit and got else None
        fresh = [i for i in got if i > self.high or i in self.gaps]
        for i in got:
            self.gaps.pop(i, None)
        if snapshot is not None:
            # Still missing and examined by this read: drop those whose every possible
            # holder had ended before the read (and that have waited out the grace).
            for gap_id, gap in list(self.gaps.items()):
                if examined is not None and gap_id > examined:
                    continue
                if snapshot.xmin >= gap.xmax and now - gap.first_seen >= self.grace_s:
                    del self.gaps[gap_id]
            present = set(got)
            top = got[-1] if got else self.high
            # A sequence that jumped far (setval, a crash's cached values) is not a
            # million open transactions: only the ids just below `top` can be.
            for missing in range(max(self.high + 1, top - MAX_NEW_GAPS), top):
                if missing not in present:
                    self.gaps[missing] = Gap(snapshot.xmax, now)
        if got and got[-1] > self.high:
            self.high = got[-1]
        return fresh

    @classmethod
    def starting_at(cls, floor: int, ids: Iterable[int], snapshot: Snapshot | None,
                    now: float, grace_s: float = DEFAULT_GRACE_S) -> GapCursor:
        """A follower's first cursor: the ids read above `floor` (head - START_LOOKBACK)
        are taken as seen (the full load that follows covers them); ids missing among
        them are open gaps."""
        cursor = cls(high=max(0, floor), grace_s=grace_s)
        cursor.advance(ids, snapshot, now)
        return cursor


def read_sql(table: str, id_column: str, columns: str, postgres: bool, gaps: bool) -> str:
    """The batch read, '?' placeholders: (cursor.high, [open gaps] if gaps, limit).

    On PostgreSQL every row also carries its statement's snapshot (xmin, xmax as
    text) and one row with NULL id comes back when nothing matched, so the
    snapshot is always there. `columns` must not name `id_column`.
    """
    if not postgres:
        return (f"SELECT {id_column} AS id, {columns} FROM {table} WHERE {id_column} > ?"
                f" ORDER BY {id_column} LIMIT ?")
    where = f"{id_column} > ?" + (f" OR {id_column} = ANY(?)" if gaps else "")
    return (
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS snap_xmin,"
        " pg_snapshot_xmax(pg_current_snapshot())::text AS snap_xmax, j.*"
        f" FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT {id_column} AS id, {columns}"
        f" FROM {table} WHERE {where} ORDER BY {id_column} LIMIT ?) AS j ON true"
    )


def read_params(cursor: GapCursor, postgres: bool, limit: int) -> list[object]:
    gaps = cursor.open_gaps()
    if postgres and gaps:
        return [cursor.high, gaps, limit]
    return [cursor.high, limit]


def head_sql(table: str, id_column: str, postgres: bool) -> str:
    """A follower's start, '?' = START_LOOKBACK: one row per id above head - ?
    (`floor` on every row; one row with NULL id if none), with the snapshot on
    PostgreSQL, for `GapCursor.starting_at`."""
    snap = ("pg_snapshot_xmin(pg_current_snapshot())::text AS snap_xmin,"
            " pg_snapshot_xmax(pg_current_snapshot())::text AS snap_xmax, " if postgres else "")
    return (
        f"WITH h AS (SELECT COALESCE(MAX({id_column}), 0) - ? AS floor FROM {table})"
        f" SELECT {snap}h.floor AS floor, j.{id_column} AS id FROM h"
        f" LEFT JOIN {table} AS j ON j.{id_column} > h.floor"
    )


def snapshot_of(row: dict[str, object] | None) -> Snapshot | None:
    """The snapshot carried by a `read_sql`/`head_sql` row (None on SQLite)."""
    if row is None or row.get("snap_xmin") is None:
        return None
    return Snapshot(int(str(row["snap_xmin"])), int(str(row["snap_xmax"])))
