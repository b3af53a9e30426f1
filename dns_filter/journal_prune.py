"""Has the journal been pruned past a follower's cursor? (issue 17, data lifecycle)

The portal prunes change_journal behind the slowest LIVE follower (the
`journal_cursor` each enforcer and resolver writes with its heartbeat into
`boxes`); a follower unseen for `[retention] follower_timeout_s` (24 h) no longer
holds it back. Rows it never read may then be gone, so when such a follower comes
back it must not carry on from its cursor: it reads `retention.pruned_through`
(the highest id deleted) and, if that is at or above its cursor, starts a new
cursor at the head and reconciles in full. A follower that was reading all along
is never behind it (it held the pruning back), so the check is made only after a
follower has not read the journal for RETURN_CHECK_S: no extra query per poll.

Plain values and SQL text: the resolver (psycopg/sqlite3) and the portal
(Tortoise) each run the read. Part of the database contract (migration 0020).
"""

from __future__ import annotations

JOURNAL = "change_journal"
RADACCT_CHANGES = "radacct_changes"
RETURN_CHECK_S = 60.0  # far below the 24 h after which a follower stops holding pruning



def sql(mark: str = "?") -> str:
    """The read; one parameter, the table's name (JOURNAL)."""
    return f"SELECT pruned_through FROM retention WHERE name = {mark}"


def needs_check(last_read: float, now: float) -> bool:
    """Monotonic seconds: the follower has not read the journal for a while."""
    return now - last_read >= RETURN_CHECK_S


def missed(cursor_high: int, pruned_through: int | None) -> bool:
    """Rows the follower had not read (ids above its cursor) were deleted."""
    return pruned_through is not None and pruned_through > cursor_high
