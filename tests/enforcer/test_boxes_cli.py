"""`ispedge nas add|list|set|remove` and `ispedge box list`, as an operator runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import forkserver
from tests.support.portal import portal_env


def cli(db_url: str, tmp_path: Path, *args: str, box: str = "edge-1"
        ) -> subprocess.CompletedProcess[str]:
    env = portal_env(db_url, tmp_path)
    env["ISPEDGE_GENERAL_BOX"] = box
    return forkserver.run(list(args), env, timeout=60)


def test_nas_add_set_list_remove(db_url: str, tmp_path: Path) -> None:
    out = cli(db_url, tmp_path, "nas", "add", "10.0.0.1", "--secret", "s3cret", "--coa-port",
              "3800", "--profile", "accel-ppp", "--box", "edge-1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "NAS 10.0.0.1 added (CoA port 3800, profile accel-ppp, box edge-1)"
    assert cli(db_url, tmp_path, "nas", "add", "10.0.0.2", "--secret", "x").returncode == 0
    out = cli(db_url, tmp_path, "nas", "set", "10.0.0.2", "--box", "edge-2", "--profile",
              "generic")
    assert out.returncode == 0, out.stderr
    listed = json.loads(cli(db_url, tmp_path, "nas", "list", "--json").stdout)
    assert listed == [
        {"address": "10.0.0.1", "coa_port": 3800, "profile": "accel-ppp", "box": "edge-1",
         "owner": "unowned"},  # no enforcer has reported yet
        {"address": "10.0.0.2", "coa_port": 3799, "profile": "generic", "box": "edge-2",
         "owner": "unowned"}]
    assert "secret" not in json.dumps(listed)
    assert cli(db_url, tmp_path, "nas", "set", "10.0.0.2", "--no-box").returncode == 0
    assert cli(db_url, tmp_path, "nas", "remove", "10.0.0.1").returncode == 0
    listed = json.loads(cli(db_url, tmp_path, "nas", "list", "--json").stdout)
    assert [(n["address"], n["box"]) for n in listed] == [("10.0.0.2", "-")]


@pytest.mark.parametrize(("args", "message"), [
    (["nas", "add", "10.0.0.x", "--secret", "s"], "address: '10.0.0.x' is not an IP address"),
    (["nas", "add", "10.0.0.5", "--secret", "s", "--coa-port", "70000"],
     "coa port: 70000 is not between 1 and 65535"),
    (["nas", "add", "10.0.0.5", "--secret", "s", "--coa-port", "x"], "coa port: 'x' is not"),
    (["nas", "add", "10.0.0.5", "--secret", "s", "--profile", "juniper"],
     "profile: 'juniper' is not one of"),
    (["nas", "add", "10.0.0.5", "--secret", "s", "--box", "bad box"],
     "box: 'bad box' is not a box name"),
    (["nas", "add", "10.0.0.5", "--secret", "has space"], "secret: 1-60 characters"),
    (["nas", "add", "10.0.0.9", "--secret", "s"], "NAS 10.0.0.9 already exists"),
    (["nas", "set", "10.0.0.7", "--box", "edge-2"], "no NAS 10.0.0.7"),
    (["nas", "set", "10.0.0.9"], "nothing to change"),
    (["nas", "set", "10.0.0.9", "--box", "e", "--no-box"], "either --box NAME or --no-box"),
    (["nas", "remove", "10.0.0.7"], "no NAS 10.0.0.7"),
])
def test_bad_values_are_one_line_and_exit_1(db_url: str, tmp_path: Path, args: list[str],
                                            message: str) -> None:
    assert cli(db_url, tmp_path, "nas", "add", "10.0.0.9", "--secret", "s").returncode == 0
    out = cli(db_url, tmp_path, *args)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
    listed = json.loads(cli(db_url, tmp_path, "nas", "list", "--json").stdout)
    assert [n["address"] for n in listed] == ["10.0.0.9"]  # nothing half-written


def test_box_list_shows_last_seen_sessions_owned_and_journal_lag(db_url: str,
                                                                 tmp_path: Path) -> None:
    import asyncio
    import time
    from datetime import UTC, datetime

    from portal.store import boxes, db

    async def setup() -> None:
        await db.open_db(db_url)
        try:
            now = time.time()
            await boxes.heartbeat("edge-1", boxes.ENFORCER, now, now - 100,
                                  journal_cursor=0)
            await boxes.heartbeat("edge-2", boxes.ENFORCER, now - 120, now - 300)
            await boxes.heartbeat("edge-1", boxes.RESOLVER, now, now - 100)
            await db.execute("INSERT INTO change_journal (username, kind, payload, origin,"
                             " created_at) VALUES ('alice', 'plan', '{}', 'cli', ?)",
                             [db.db_time(datetime.now(UTC))])
        finally:
            await db.close_db()

    asyncio.run(setup())
    assert cli(db_url, tmp_path, "nas", "add", "10.0.0.1", "--secret", "s", "--box",
               "edge-1").returncode == 0
    assert cli(db_url, tmp_path, "nas", "add", "10.0.0.2", "--secret", "s", "--box",
               "edge-2").returncode == 0
    out = cli(db_url, tmp_path, "box", "list", "--json")
    assert out.returncode == 0, out.stderr
    rows = {(r["name"], r["role"]): r for r in json.loads(out.stdout)}
    assert set(rows) == {("edge-1", "enforcer"), ("edge-1", "resolver"), ("edge-2", "enforcer")}
    e1 = rows[("edge-1", "enforcer")]
    assert e1["alive"] and e1["nases"] == 1 and e1["sessions_owned"] == 0
    assert e1["journal_lag"] >= 1
    e2 = rows[("edge-2", "enforcer")]
    assert not e2["alive"] and e2["nases"] == 0 and e2["seen_s_ago"] >= 119
    text = cli(db_url, tmp_path, "box", "list").stdout
    assert "edge-2  enforcer" in text and "UNOWNED: not seen for 60 s" in text
