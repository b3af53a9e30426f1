"""When the local shaper runs, and the enforcer as a child of `ispedge demo`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from portal.config import load_config
from portal.demo.enforcer import start_child
from portal.enforcer import local


@pytest.mark.parametrize(("enabled", "down", "up", "cap", "reason"), [
    (True, "eth1", "eth0", True, None),
    (False, "eth1", "eth0", True, "disabled ([enforcer] shaper = false)"),
    (True, "", "eth0", True, "no interfaces configured ([enforcer] down_interface/up_interface)"),
    (True, "eth1", "", True, "no interfaces configured ([enforcer] down_interface/up_interface)"),
    (True, "eth1", "eth0", False, "no CAP_NET_ADMIN"),
])
def test_unavailable_reason(enabled: bool, down: str, up: str, cap: bool,
                            reason: str | None) -> None:
    assert local.unavailable_reason(enabled, down, up, cap) == reason


@pytest.mark.parametrize(("capeff", "expected"), [
    ("000001ffffffffff", True), ("0000000000001000", True), ("0000000000000000", False),
    ("0000000000002000", False),
])
def test_net_admin_read_from_effective_capabilities(tmp_path: Path, capeff: str,
                                                    expected: bool) -> None:
    status = tmp_path / "status"
    status.write_text(f"Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t{capeff}\n")
    assert local.has_net_admin(str(status)) is expected


def test_demo_child_runs_and_says_so_in_one_line(db_url: str, tmp_path: Path) -> None:
    config = load_config(None, {"ISPEDGE_DATABASE_URL": db_url,
                                "ISPEDGE_GENERAL_STATE_DIR": str(tmp_path),
                                "ISPEDGE_ENFORCER_SHAPER": "true"})
    child, line = start_child(config, tmp_path)
    try:
        assert "\n" not in line
        assert line.startswith("Enforcer: running without the local shaper: no interfaces")
        deadline = time.monotonic() + 20
        log = tmp_path / "enforcer.log"
        while "reconcile:" not in (log.read_text() if log.exists() else ""):
            assert child.process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        # the daemon's own notice is one line too
        assert sum("local shaper off" in x for x in log.read_text().splitlines()) == 1
    finally:
        child.stop()
    assert child.process.returncode == 0
