"""The blocklists timer and its service verify together, and the timer fires regularly."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.requirements import need_binary
from tests.systemd.test_units import BINARY, parse

SYSTEMD = Path(__file__).parents[2] / "systemd"


def test_timer_and_service_verify_together(tmp_path: Path) -> None:
    analyze = need_binary("systemd-analyze", "systemd")
    fake_bin = tmp_path / "ispedge"
    fake_bin.write_text("#!/bin/sh\n")
    fake_bin.chmod(0o755)
    for name in ("ispedge-blocklists.service", "ispedge-blocklists.timer"):
        text = (SYSTEMD / name).read_text().replace(BINARY, str(fake_bin))
        (tmp_path / name).write_text(text)
    proc = subprocess.run([analyze, "verify", str(tmp_path / "ispedge-blocklists.timer")],
                          capture_output=True, text=True,
                          env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in proc.stderr.splitlines()
                if "ispedge-blocklists" in line and "Unknown user" not in line]
    assert not problems, proc.stderr
    timer = parse(SYSTEMD / "ispedge-blocklists.timer")["Timer"]
    assert timer["Unit"] == "ispedge-blocklists.service" and timer["Persistent"] == "true"
    calendar = subprocess.run([analyze, "calendar", "--iterations=2", timer["OnCalendar"]],
                              capture_output=True, text=True, check=True).stdout
    assert "Next elapse" in calendar
    service = parse(SYSTEMD / "ispedge-blocklists.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"].split()[-2:] == ["blocklists", "update"]
    assert service["ReadWritePaths"] == "/var/lib/ispedge/blocklists"
