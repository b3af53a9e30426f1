"""Writing and reading FreeRADIUS's radacct rows in its own per-dialect format.

FreeRADIUS on SQLite stores times as epoch integers (the columns are declared
datetime); on PostgreSQL as timestamptz. Everything here converts at the edge so
callers deal in aware datetimes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from portal.store import db


@dataclass(frozen=True)
class AcctSession:
    username: str
    acct_session_id: str
    nas_ip: str
    start: datetime
    update: datetime | None
    stop: datetime | None
    input_octets: int  # subscriber upload
    output_octets: int  # subscriber download
    framed_ip: str = ""
    nas_port_id: str = "1"
    terminate_cause: str = ""


def unique_id(username: str, session_id: str, nas_ip: str, nas_identifier: str = "",
              nas_port: str = "1") -> str:
    """The acctuniqueid FreeRADIUS computes (MD5 over these attributes)."""
    raw = f"{username},{session_id},{nas_ip},{nas_identifier},{nas_port}"
    return hashlib.md5(raw.encode()).hexdigest()


def to_db_time(value: datetime | None) -> object:
    if value is None:
        return None
    if db.current_dialect() == "sqlite":
        return int(value.timestamp())
    return value


def from_db_time(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def insert_sessions(sessions: list[AcctSession]) -> None:
    sql = (
        "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, nasportid,"
        " acctstarttime, acctupdatetime, acctstoptime, acctsessiontime, acctinputoctets,"
        " acctoutputoctets, framedipaddress, acctterminatecause, calledstationid,"
        " callingstationid, acctauthentic, nasporttype, framedprotocol, servicetype)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', 'RADIUS', 'Virtual', 'PPP',"
        " 'Framed-User')"
    )
    pg = db.current_dialect() == "postgres"
    for s in sessions:
        end = s.stop or s.update or s.start
        framed = (s.framed_ip or None) if pg else s.framed_ip
        await db.execute(sql, [
            s.acct_session_id, unique_id(s.username, s.acct_session_id, s.nas_ip, "",
                                         s.nas_port_id),
            s.username, s.nas_ip, s.nas_port_id, to_db_time(s.start), to_db_time(s.update),
            to_db_time(s.stop), int((end - s.start).total_seconds()), s.input_octets,
            s.output_octets, framed, s.terminate_cause,
        ])
