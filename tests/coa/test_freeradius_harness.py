"""The FreeRADIUS harness itself: authentication from radcheck/radreply and
accounting into radacct, on FreeRADIUS's own shipped schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from coa import Rate
from coa.profiles import default_profiles
from tests.coa.conftest import SECRET, execute, need_freeradius
from tests.support.freeradius import FreeRadius, NasSession, parse_radclient


def add_user(
    database: str, username: str, password: str, replies: list[tuple[str, str, str]]
) -> None:
    execute(
        database,
        "INSERT INTO radcheck (username, attribute, op, value)"
        " VALUES (?, 'Cleartext-Password', ':=', ?)",
        (username, password),
    )
    for attribute, op, value in replies:
        execute(
            database,
            "INSERT INTO radreply (username, attribute, op, value) VALUES (?, ?, ?, ?)",
            (username, attribute, op, value),
        )


def test_auth_and_accounting_land_in_the_database(database: str) -> None:
    add_user(database, "alice", "pa55", [("Mikrotik-Rate-Limit", ":=", "2000k/10000k")])
    with FreeRadius(database, secret=SECRET) as radius:
        accept = radius.authenticate("alice", "pa55")
        assert accept.code == "Access-Accept", accept.output
        assert accept.attributes == {"Mikrotik-Rate-Limit": ["2000k/10000k"]}

        reject = radius.authenticate("alice", "wrong")
        assert reject.code == "Access-Reject"
        assert reject.returncode == 1  # why the harness reads "Received", not the exit status

        session = NasSession("alice", "sess-0001", framed_ip="100.64.0.10")
        assert radius.accounting("Start", session).code == "Accounting-Response"
        rows = execute(
            database,
            "SELECT acctstoptime, framedipaddress FROM radacct WHERE acctsessionid = ?",
            ("sess-0001",),
        )
        assert len(rows) == 1 and rows[0][0] is None and str(rows[0][1]) == "100.64.0.10"

        # more than 4 GiB each way: the NAS reports Gigawords, the row the sum
        upload, download = 5 * 2**32 + 7, 2**32 + 123
        interim = radius.accounting(
            "Interim-Update",
            session,
            input_octets=upload,
            output_octets=download,
            session_time_s=60,
        )
        assert interim.code == "Accounting-Response"
        assert execute(
            database,
            "SELECT acctinputoctets, acctoutputoctets, acctsessiontime FROM radacct"
            " WHERE acctsessionid = ?",
            ("sess-0001",),
        ) == [(upload, download, 60)]

        stop = radius.accounting(
            "Stop", session, input_octets=upload + 1, output_octets=download + 2, session_time_s=90
        )
        assert stop.code == "Accounting-Response"
        rows = execute(
            database,
            "SELECT acctinputoctets, acctoutputoctets, acctsessiontime, acctstoptime FROM radacct"
            " WHERE acctsessionid = ?",
            ("sess-0001",),
        )
        assert len(rows) == 1
        assert rows[0][:3] == (upload + 1, download + 2, 90) and rows[0][3] is not None


@pytest.mark.parametrize("profile", ["mikrotik", "accel-ppp", "generic", "cisco"])
def test_profile_reply_rows_come_back_in_access_accept(sqlite_db: Path, profile: str) -> None:
    """What the portal writes to radreply with reply_attributes() reaches the
    NAS at login exactly as a CoA would set it."""
    profiles = default_profiles({10000: "DOWN-10M"}, {2000: "UP-2M"})
    rate = Rate(10000, 2000)
    add_user(str(sqlite_db), "bob", "pw", profiles[profile].reply_attributes(rate))
    with FreeRadius(sqlite_db, secret=SECRET) as radius:
        accept = radius.authenticate("bob", "pw")
    assert accept.code == "Access-Accept", accept.output
    expected: dict[str, list[str]] = {}
    for name, value in profiles[profile].attributes(rate):
        expected.setdefault(name, []).append(str(value))
    assert accept.attributes == expected


def test_start_failure_reports_the_log(tmp_path: Path) -> None:
    need_freeradius()
    # the SQL module cannot open a database in a missing directory
    radius = FreeRadius(tmp_path / "missing" / "radius.db", secret=SECRET)
    with pytest.raises(RuntimeError, match="did not start(.|\\n)*sql"):
        radius.start(timeout_s=10)
    assert radius.process is not None and radius.process.poll() is not None


def test_secret_that_would_break_the_config_is_refused(sqlite_db: Path) -> None:
    with pytest.raises(ValueError, match="secret"):
        FreeRadius(sqlite_db, secret='bad"secret')


def test_parse_radclient_output() -> None:
    output = (
        "Sent Access-Request Id 7 from 0.0.0.0:1 to 127.0.0.1:1812 length 40\n"
        '\tUser-Name = "alice"\n'
        "Received Access-Accept Id 7 from 127.0.0.1:1812 to 0.0.0.0:0 length 40\n"
        '\tMikrotik-Rate-Limit = "2000k/10000k"\n'
        "\tSession-Timeout = 60\n"
    )
    reply = parse_radclient(output)
    assert reply.code == "Access-Accept"
    assert reply.attributes == {"Mikrotik-Rate-Limit": ["2000k/10000k"], "Session-Timeout": ["60"]}
    assert parse_radclient("(0) No reply from server for ID 7 socket 3\n", 1).code is None
