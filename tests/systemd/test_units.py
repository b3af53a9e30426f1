"""Every unit in systemd/ passes `systemd-analyze verify` and keeps its hardening."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.requirements import need_binary

UNITS = sorted((Path(__file__).parents[2] / "systemd").glob("*.service"))


def parse(unit: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit)
    return parser


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_verifies(unit: Path, tmp_path: Path):
    analyze = need_binary("systemd-analyze", "systemd")
    # verify checks that ExecStart exists: point it at a stand-in binary.
    fake_bin = tmp_path / "ispedge"
    fake_bin.write_text("#!/bin/sh\n")
    fake_bin.chmod(0o755)
    text = re.sub(r"(?m)^(ExecStart\S*=[-@:+!]*)\S*/ispedge\b", rf"\g<1>{fake_bin}",
                  unit.read_text())
    copy = tmp_path / unit.name
    copy.write_text(text)
    proc = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                          env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in proc.stderr.splitlines()
                if unit.name in line and "Unknown user" not in line]
    assert proc.returncode == 0 or not problems, proc.stderr
    assert not problems, proc.stderr


def test_portal_unit_is_unprivileged():
    service = parse(Path(UNITS[0]).parent / "ispedge-portal.service")["Service"]
    assert service["User"] == "ispedge"
    assert service["CapabilityBoundingSet"] == ""
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert service["NoNewPrivileges"] == "yes"
    assert service["StateDirectory"] == "ispedge"


def test_every_unit_drops_privileges():
    for unit in UNITS:
        service = parse(unit)["Service"]
        assert service.get("User") not in (None, "root"), unit.name
        assert service.get("NoNewPrivileges") == "yes", unit.name
        assert service.get("ProtectSystem") == "strict", unit.name
