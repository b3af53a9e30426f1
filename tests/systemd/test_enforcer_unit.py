"""The enforcer unit: its own user, CAP_NET_ADMIN and nothing else, portal-grade hardening."""

from __future__ import annotations

from pathlib import Path

from tests.systemd.test_units import parse

UNIT = Path(__file__).parents[2] / "systemd" / "ispedge-enforcer.service"


def test_enforcer_unit_has_only_net_admin_and_its_own_user() -> None:
    service = parse(UNIT)["Service"]
    portal = parse(UNIT.with_name("ispedge-portal.service"))["Service"]
    assert service["User"] not in ("root", portal["User"])
    assert service["CapabilityBoundingSet"] == "CAP_NET_ADMIN"
    assert service["AmbientCapabilities"] == "CAP_NET_ADMIN"
    assert "AF_NETLINK" in service["RestrictAddressFamilies"].split()
    assert service["ExecStart"].split()[-1] == "enforcer"
    for key in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
                "PrivateDevices", "ProtectKernelModules", "RestrictNamespaces",
                "MemoryDenyWriteExecute", "StateDirectory", "ReadWritePaths", "UMask"):
        assert service.get(key) == portal.get(key), key
