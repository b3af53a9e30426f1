"""A simulated NAS that writes radacct exactly as FreeRADIUS's stock queries do.

Used by `ispedge demo`, the tests and the benchmark so their usage history is
built by the real ingest path. Mirrors mods-config/sql/main/*/queries.conf:
Start inserts the row (start = update = event time, counters 0); Interim-Update
overwrites acctupdatetime, the counters and sets acctinterval = 0; Stop sets
acctstoptime, the counters and the terminate cause but leaves acctupdatetime;
a Stop whose Start was lost inserts the row with start = event - session time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portal.store import db, radacct


@dataclass
class SimSession:
    username: str
    session_id: str
    nas_ip: str = "127.0.0.1"
    framed_ip: str = ""
    nas_port: str = "1"
    start: datetime | None = None
    bytes_in: int = 0  # cumulative, as the NAS reports them (upload)
    bytes_out: int = 0  # (download)

    @property
    def uid(self) -> str:
        return radacct.unique_id(self.username, self.session_id, self.nas_ip, "", self.nas_port)


_INSERT = (
    "INSERT INTO radacct (acctsessionid, acctuniqueid, username, realm, nasipaddress, nasportid,"
    " nasporttype, acctstarttime, acctupdatetime, acctstoptime, acctsessiontime, acctauthentic,"
    " connectinfo_start, connectinfo_stop, acctinputoctets, acctoutputoctets, calledstationid,"
    " callingstationid, acctterminatecause, servicetype, framedprotocol, framedipaddress)"
    " VALUES (?, ?, ?, '', ?, ?, 'Virtual', ?, ?, ?, ?, 'RADIUS', '', '', ?, ?, '', '', ?,"
    " 'Framed-User', 'PPP', ?)"
)


def _framed(s: SimSession) -> object:
    # PostgreSQL's framedipaddress is inet: '' is not a value there.
    return (s.framed_ip or None) if db.current_dialect() == "postgres" else s.framed_ip


async def _many(sql: str, rows: list[list[object]]) -> None:
    await db.execute_many(sql, rows)


async def start(sessions: list[SimSession], at: datetime) -> None:
    t = radacct.to_db_time(at)
    for s in sessions:
        s.start, s.bytes_in, s.bytes_out = at, 0, 0
    await _many(_INSERT, [[s.session_id, s.uid, s.username, s.nas_ip, s.nas_port, t, t, None,
                           0, 0, 0, "", _framed(s)] for s in sessions])


async def interim(sessions: list[SimSession], at: datetime) -> None:
    t = radacct.to_db_time(at)
    await _many(
        "UPDATE radacct SET acctupdatetime = ?, acctinterval = 0, acctsessiontime = ?,"
        " acctinputoctets = ?, acctoutputoctets = ? WHERE acctuniqueid = ?",
        [[t, int((at - (s.start or at)).total_seconds()), s.bytes_in, s.bytes_out, s.uid]
         for s in sessions])


async def stop(sessions: list[SimSession], at: datetime, cause: str = "User-Request") -> None:
    t = radacct.to_db_time(at)
    await _many(
        "UPDATE radacct SET acctstoptime = ?, acctsessiontime = ?, acctinputoctets = ?,"
        " acctoutputoctets = ?, acctterminatecause = ? WHERE acctuniqueid = ?",
        [[t, int((at - (s.start or at)).total_seconds()), s.bytes_in, s.bytes_out, cause, s.uid]
         for s in sessions])


async def stop_without_start(s: SimSession, at: datetime, session_seconds: int,
                             cause: str = "Lost-Carrier") -> None:
    """The Stop's fallback INSERT, when no Start row exists."""
    began = radacct.to_db_time(datetime.fromtimestamp(at.timestamp() - session_seconds,
                                                      at.tzinfo))
    t = radacct.to_db_time(at)
    await _many(_INSERT, [[s.session_id, s.uid, s.username, s.nas_ip, s.nas_port, began, t, t,
                           session_seconds, s.bytes_in, s.bytes_out, cause, _framed(s)]])
