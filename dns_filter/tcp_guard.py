"""TCP connection rules: caps, eviction and deadlines, as plain values.

One host that opened thousands of connections and dribbled a byte every few
seconds used to hold every descriptor of the resolver (the idle timer
restarted on each byte), and TCP DNS was refused for everyone. The rules:

- At most `max_per_source` connections per source address: the newest one
  from a source at its cap is refused (closed at once), so one host can never
  push out the others.
- At most `max_connections` in total: a new client is accepted and the
  connection that has been idle longest is evicted. "Idle" means no answer of
  ours outstanding; activity is a complete query (or an answer sent), never a
  lone byte, so dribblers are always the first to go.
- Deadlines: `idle_timeout_s` between queries, `query_timeout_s` from the
  first byte of a length-prefixed message to its last (not restarted per
  byte), `max_lifetime_s` for the whole connection.
- `connection_cap` sizes the total cap below the process's descriptor limit.

The server (`dns_filter/server.py`) keeps one `TcpConnection` per Twisted
protocol and asks `TcpConnections` on every accept; nothing here touches a
socket or a clock of its own.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field

# How many of the longest-idle connections eviction looks at for one with no
# answer outstanding before it takes the longest-idle one regardless.
EVICT_SCAN = 64
# Descriptors kept free for everything that is not a client connection: UDP
# sockets, upstream queries, the database, blocklist files, Twisted's own.
MIN_DESCRIPTOR_RESERVE = 128


@dataclass(frozen=True)
class TcpLimits:
    max_connections: int
    max_per_source: int
    idle_timeout_s: float
    query_timeout_s: float
    max_lifetime_s: float


@dataclass(eq=False)
class TcpConnection:
    """One client connection's state (identity-hashed)."""

    source: str
    opened_at: float
    last_activity: float
    message_started_at: float | None = None  # first byte of an incomplete message
    pending: int = 0  # answers of ours still outstanding
    owner: object = field(default=None, repr=False)  # the server's protocol object
    due: float = float("inf")  # its current deadline (see TcpConnections.schedule)


def deadline(conn: TcpConnection, limits: TcpLimits) -> tuple[float, str]:
    """When this connection is closed if nothing changes, and why
    ("lifetime", "query" or "idle")."""
    due, reason = conn.opened_at + limits.max_lifetime_s, "lifetime"
    if conn.message_started_at is not None:
        query_due = conn.message_started_at + limits.query_timeout_s
        if query_due < due:
            due, reason = query_due, "query"
    elif conn.pending == 0:
        idle_due = conn.last_activity + limits.idle_timeout_s
        if idle_due < due:
            due, reason = idle_due, "idle"
    return due, reason


def descriptor_reserve(nofile: int) -> int:
    return max(MIN_DESCRIPTOR_RESERVE, nofile // 8)


def connection_cap(configured: int, nofile: int) -> int:
    """The total cap a process with `nofile` descriptors can honour: the
    configured one, lowered to leave `descriptor_reserve` free."""
    return max(1, min(configured, nofile - descriptor_reserve(nofile)))


class TcpConnections:
    """The open connections of one worker, longest idle first, and their deadlines.

    Deadlines are one heap swept by the server in bounded batches (`expired`),
    not a timer per connection: thousands of connections that an attacker
    opened together also time out together, and closing them all in one
    reactor turn would hold up every UDP answer meanwhile."""

    def __init__(self, limits: TcpLimits) -> None:
        self.limits = limits
        self.by_source: dict[str, int] = {}
        self.order: OrderedDict[TcpConnection, None] = OrderedDict()
        # (due, tie-breaker, connection); an entry whose due is no longer the
        # connection's own is stale and skipped when it comes up
        self.deadlines: list[tuple[float, int, TcpConnection]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self.order)

    def admit(
        self, source: str, now: float
    ) -> tuple[TcpConnection | None, TcpConnection | None]:
        """(the new connection or None if refused, the connection evicted for it or None).

        A source at its own cap is refused before anything is evicted, so it
        cannot push out other clients."""
        if self.by_source.get(source, 0) >= self.limits.max_per_source:
            return None, None
        victim = None
        if len(self.order) >= self.limits.max_connections:
            victim = self._longest_idle()
            self.remove(victim)
        conn = TcpConnection(source, now, now)
        self.order[conn] = None
        self.by_source[source] = self.by_source.get(source, 0) + 1
        self.schedule(conn)
        return conn, victim

    def schedule(self, conn: TcpConnection) -> None:
        """Note the connection's deadline after a change of its state."""
        due = deadline(conn, self.limits)[0]
        if due != conn.due:
            conn.due = due
            heapq.heappush(self.deadlines, (due, next(self._seq), conn))
            if len(self.deadlines) > 4 * len(self.order) + 1024:
                self._compact()

    def _compact(self) -> None:
        self.deadlines = [(c.due, next(self._seq), c) for c in self.order]
        heapq.heapify(self.deadlines)

    def expired(self, now: float, limit: int) -> list[tuple[TcpConnection, str]]:
        """Up to `limit` open connections past their deadline, each with the reason;
        they are forgotten here (the server closes them)."""
        out: list[tuple[TcpConnection, str]] = []
        heap = self.deadlines
        while heap and heap[0][0] <= now and len(out) < limit:
            due, _, conn = heapq.heappop(heap)
            if due != conn.due or conn not in self.order:
                continue  # stale: rescheduled since, or already closed
            out.append((conn, deadline(conn, self.limits)[1]))
            self.remove(conn)
        return out

    def next_due(self) -> float | None:
        return self.deadlines[0][0] if self.deadlines else None

    def _longest_idle(self) -> TcpConnection:
        first = None
        for i, conn in enumerate(self.order):
            if first is None:
                first = conn
            if conn.pending == 0:
                return conn
            if i + 1 >= EVICT_SCAN:
                break
        assert first is not None  # only called with max_connections (>= 1) open
        return first

    def touch(self, conn: TcpConnection, now: float) -> None:
        """A complete query arrived or an answer left: the connection is in use."""
        conn.last_activity = now
        if conn in self.order:
            self.order.move_to_end(conn)
            self.schedule(conn)

    def remove(self, conn: TcpConnection) -> None:
        """Forget a closed or evicted connection (again is harmless)."""
        if conn in self.order:
            del self.order[conn]
            left = self.by_source[conn.source] - 1
            if left:
                self.by_source[conn.source] = left
            else:
                del self.by_source[conn.source]
