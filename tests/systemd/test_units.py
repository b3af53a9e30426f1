"""Every unit in systemd/ passes `systemd-analyze verify` and keeps its hardening: an
exposure of at most 2.0, one binary path, documentation that the install step really
installs, and a state directory no two users fight over."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.requirements import need_binary, need_root

ROOT = Path(__file__).parents[2]
SYSTEMD = ROOT / "systemd"
UNITS = sorted(SYSTEMD.glob("*.service"))
ALL_UNITS = sorted([*UNITS, *SYSTEMD.glob("*.timer")])
BINARY = "/usr/local/bin/ispedge"
MAX_EXPOSURE = 2.0


def parse(unit: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit)
    return parser


def values(unit: Path, key: str) -> list[str]:
    """Every value of a key that may repeat (Documentation=, ReadWritePaths=), split."""
    found: list[str] = []
    for line in unit.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            found += value.split()
    return found


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
    assert "StateDirectory" not in service  # systemd/tmpfiles.d/ispedge.conf owns it
    assert service["ReadWritePaths"] == "/var/lib/ispedge"


def test_the_resolver_gets_the_cpu_before_the_other_daemons():
    # Its answers wait on a CPU wake-up when the box is busy: a group weight above
    # every other daemon's (cgroup v2 CPUWeight, systemd's default 100) and a
    # negative Nice where there is no CPU controller (dns_filter/README.md).
    def weight(unit: Path) -> int:
        return int(parse(unit).get("Service", "CPUWeight", fallback="100"))

    dns = SYSTEMD / "ispedge-dns.service"
    others = [u for u in UNITS if u != dns]
    assert others and all(weight(dns) > weight(u) for u in others)
    assert int(parse(dns).get("Service", "Nice")) < 0
    assert all(int(parse(u).get("Service", "Nice", fallback="0")) >= 0 for u in others)


def allowed_syscalls(analyze: str, unit: Path) -> set[str]:
    """What the unit's SystemCallFilter= lines let through, read as systemd.exec says:
    the first line (an allow list here) sets the default, each later line adds
    (plain) or removes (~) names; @groups expanded by systemd-analyze itself."""

    def expand(names: list[str]) -> set[str]:
        out: set[str] = set()
        for name in names:
            if not name.startswith("@"):
                out.add(name)
                continue
            listing = subprocess.run([analyze, "syscall-filter", name], capture_output=True,
                                     text=True, check=True).stdout
            out |= expand([line.strip() for line in listing.splitlines()[1:]
                           if line.strip() and not line.strip().startswith("#")])
        return out

    lines = values_by_line(unit, "SystemCallFilter")
    assert lines and not lines[0].startswith("~"), "an allow list first"
    allowed: set[str] = set()
    for line in lines:
        if line.startswith("~"):
            allowed -= expand(line[1:].split())
        else:
            allowed |= expand(line.split())
    return allowed


def values_by_line(unit: Path, key: str) -> list[str]:
    return [value.strip() for name, sep, value in
            (line.partition("=") for line in unit.read_text().splitlines())
            if sep and name.strip() == key]


def test_the_resolver_may_set_its_own_cpu_policy():
    # A filtered call kills the process (SIGSYS): the resolver's workers set their
    # own policy and slice (dns_filter/server.py set_cpu_scheduling, SCHED_BATCH with
    # several workers), which @resources would deny.
    analyze = need_binary("systemd-analyze", "systemd")
    allowed = allowed_syscalls(analyze, SYSTEMD / "ispedge-dns.service")
    assert {"sched_setscheduler", "sched_setattr", "sched_getattr"} <= allowed
    assert "setpriority" not in allowed and "reboot" not in allowed  # the rest stays shut
    assert "sched_setscheduler" not in allowed_syscalls(analyze,
                                                        SYSTEMD / "ispedge-portal.service")


def test_every_unit_drops_privileges():
    for unit in UNITS:
        service = parse(unit)["Service"]
        assert service.get("User") not in (None, "root"), unit.name
        assert service.get("NoNewPrivileges") == "yes", unit.name
        assert service.get("ProtectSystem") == "strict", unit.name


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_exposure_is_low(unit: Path):
    analyze = need_binary("systemd-analyze", "systemd")
    proc = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(unit)],
                          capture_output=True, text=True)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    assert found, proc.stdout + proc.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, proc.stdout


def test_every_unit_runs_the_one_binary():
    for unit in UNITS:
        assert parse(unit)["Service"]["ExecStart"].split()[0] == BINARY, unit.name


def test_documentation_is_what_the_install_step_installs(tmp_path: Path):
    """Documentation= names file: paths; systemd/install (DESTDIR staged) creates each."""
    stage = tmp_path / "stage"
    subprocess.run([str(SYSTEMD / "install")], env={**os.environ, "DESTDIR": str(stage)},
                   check=True, capture_output=True)
    for unit in ALL_UNITS:
        docs = values(unit, "Documentation")
        assert docs, unit.name
        for url in docs:
            assert url.startswith("file:///"), (unit.name, url)
            assert (stage / url.removeprefix("file:///")).is_file(), (unit.name, url)
        assert (stage / "etc/systemd/system" / unit.name).is_file()
    assert (stage / "etc/tmpfiles.d/ispedge.conf").is_file()


def tmpfiles_dirs() -> dict[str, tuple[str, str, str]]:
    """Path -> (mode, user, group) of the `d` lines in systemd/tmpfiles.d/ispedge.conf."""
    dirs = {}
    for line in (SYSTEMD / "tmpfiles.d" / "ispedge.conf").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "d":
            dirs[fields[1]] = (fields[2], fields[3], fields[4])
    return dirs


def test_no_two_users_own_one_state_directory():
    """systemd chowns a StateDirectory= recursively to the starting unit's User=: two
    units with different users owning the same (or a nested) one flip each other's files."""
    owners = [(unit.name, parse(unit)["Service"].get("User"), Path("/var/lib", d))
              for unit in UNITS for d in values(unit, "StateDirectory")]
    for name_a, user_a, dir_a in owners:
        for name_b, user_b, dir_b in owners:
            if user_a != user_b:
                assert not dir_b.is_relative_to(dir_a), (name_a, name_b, dir_a, dir_b)


def test_state_directories_come_from_tmpfiles_shared_by_group():
    dirs = tmpfiles_dirs()
    assert dirs["/var/lib/ispedge"] == ("2770", "ispedge", "ispedge")
    users = {parse(unit)["Service"]["User"] for unit in UNITS}
    for path, (mode, user, group) in dirs.items():
        assert group == "ispedge" and mode.startswith("2"), path
        assert user in users, path
    for unit in UNITS:
        service = parse(unit)["Service"]
        assert service["Group"] == "ispedge", unit.name
        for key in ("ReadWritePaths", "ReadOnlyPaths"):
            for path in values(unit, key):
                assert path.lstrip("-") in dirs, (unit.name, key, path)


def test_tmpfiles_creates_the_shared_state_directory(tmp_path: Path):
    """systemd-tmpfiles itself, on a scratch root with the users README creates."""
    need_root()
    tmpfiles = need_binary("systemd-tmpfiles", "systemd")
    users = ["ispedge", "ispedge-enforcer", "ispedge-dns", "ispedge-blocklists"]
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n" + "".join(
        f"{u}:x:{990 + i}:990::/:/usr/sbin/nologin\n" for i, u in enumerate(users)))
    (tmp_path / "etc/group").write_text("root:x:0:\nispedge:x:990:\n")
    proc = subprocess.run([tmpfiles, f"--root={tmp_path}", "--create",
                           str(SYSTEMD / "tmpfiles.d" / "ispedge.conf")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for path, (mode, user, _group) in tmpfiles_dirs().items():
        st = (tmp_path / path.lstrip("/")).stat()
        assert oct(st.st_mode & 0o7777) == oct(int(mode, 8)), path
        assert (st.st_uid, st.st_gid) == (990 + users.index(user), 990), path
