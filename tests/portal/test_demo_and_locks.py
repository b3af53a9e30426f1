"""`ispedge demo` end to end, and a locked database answered with a clear error."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.portal import free_port, portal_env
from tests.support.requirements import need_binary


def test_demo_creates_data_serves_the_portal_and_logs_in(tmp_path: Path):
    state = tmp_path / "demo"
    # left by an earlier run under a permissive umask: the demo tightens it on start
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    (state / "enforcer.log").write_text("earlier run\n")
    (state / "enforcer.log").chmod(0o644)
    port = free_port()
    env = portal_env("", tmp_path / "unused")
    env.pop("ISPEDGE_DATABASE_URL")
    proc = subprocess.Popen([sys.executable, "-m", "portal.main", "demo", "--state-dir",
                             str(state), "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            if line.startswith("DNS:"):  # printed after Portal:, Logins:, WiFi:, Enforcer:
                break
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}/customer/login" in text, text
        logins = text.split("Logins:", 1)[1].split()
        username, password = logins[0], logins[2]
        with sqlite3.connect(state / "ispedge.db") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert 45 <= conn.execute("SELECT count(*) FROM subscribers").fetchone()[0] <= 60
            first, last = conn.execute(
                "SELECT min(acctstarttime), max(coalesce(acctstoptime, acctupdatetime))"
                " FROM radacct").fetchone()
            assert (last - first) >= 59 * 86400
            assert conn.execute("SELECT count(DISTINCT reseller_id) FROM subscribers"
                                ).fetchone()[0] == 2
        base = f"http://127.0.0.1:{port}"
        page = httpx.get(base + "/customer/login")
        assert page.status_code == 200 and "Sign in" in page.text
        r = httpx.post(base + "/customer/api/login", json={"username": username,
                                                           "password": password})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        me = httpx.get(base + "/customer/api/me", headers=auth).json()
        assert me["plan"]["name"] and me["balance_cents"] > 0 and me["expires_in_seconds"] > 0
        # The demo ACS: the WiFi tab is shown and works (read, then rename the 5 GHz network).
        assert "WiFi:" in text and "demo ACS" in text, text
        assert "wifi" in [t["name"] for t in me["tabs"]], me["tabs"]
        wifi = httpx.get(base + "/customer/api/wifi", headers=auth)
        assert wifi.status_code == 200, wifi.text
        assert {n["band"] for n in wifi.json()["device"]["networks"]} == {"2.4", "5"}
        changed = httpx.post(base + "/customer/api/wifi/changes", headers=auth,
                             json={"band": "5", "ssid": "Demo-Renamed-5G"})
        assert changed.status_code == 200 and changed.json()["status"] == "done", changed.text
        networks = httpx.get(base + "/customer/api/wifi", headers=auth).json()["device"]["networks"]
        assert {n["band"]: n["ssid"] for n in networks}["5"] == "Demo-Renamed-5G"
        cedar = httpx.get(base + "/customer/api/branding",
                          headers={"Host": f"cedar.localhost:{port}"}).json()
        assert cedar["company_name"] == "Cedar Net"
        # the demo resolver: the printed dig shows a demo home's blocking, offline
        dig_cmd = text.split("DNS:", 1)[1].split("->")[0].split()
        assert dig_cmd[0] == "dig" and "-b" in dig_cmd, text
        out = subprocess.run([need_binary("dig", "bind9-dnsutils"), *dig_cmd[1:], "+tries=1",
                              "+time=2"], capture_output=True, text=True, timeout=10).stdout
        assert "status: NXDOMAIN" in out and "blocked by ispedge" in out, out
        # Cleartext-Password rows and the token key: nothing readable by others.
        private = [state, state / "ispedge.db", state / "ispedge.db-wal",
                   state / "ispedge.db-shm", state / "signing.keys", state / "enforcer.log"]
        modes = {p.name: oct(p.stat().st_mode & 0o777) for p in private}
        assert all(p.stat().st_mode & 0o007 == 0 for p in private), modes
        assert all(p.stat().st_mode & 0o020 == 0 for p in private), modes  # 0750/0640
    finally:
        proc.terminate()
        proc.wait(10)


def test_default_demo_state_dir_is_gitignored():
    repo = Path(__file__).parents[2]
    git = need_binary("git", "git")
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("ispedge-demo/ispedge.db", "ispedge-demo/signing.keys"):
        proc = subprocess.run([git, "-C", str(repo), "check-ignore", "-q", path])
        assert proc.returncode == 0, path


def test_locked_database_is_a_clear_error_and_writes_nothing(db_url: str, tmp_path: Path):
    if not db_url.startswith("sqlite://"):
        # PostgreSQL has no file lock; its failure path is an unreachable server.
        env = portal_env("postgres://postgres@127.0.0.1:1/nothing", tmp_path / "s")
        proc = subprocess.run([sys.executable, "-m", "portal.main", "subscriber", "list"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert proc.stderr.startswith("ispedge: ") and "Traceback" not in proc.stderr
        return
    env = portal_env(db_url, tmp_path / "s")
    run = [sys.executable, "-m", "portal.main"]
    subprocess.run([*run, "reseller", "add", "acme"], env=env, check=True, capture_output=True)
    path = db_url.split("://", 1)[1]
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = subprocess.run([*run, "reseller", "add", "beta"], env=env, capture_output=True,
                              text=True, timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 1
    assert "database" in proc.stderr and "locked" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM resellers")]
    assert names == ["acme"]
