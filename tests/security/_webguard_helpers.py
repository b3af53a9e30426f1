"""Helpers for tests/security/test_web_abuse.py: the routes of the real app, latency."""

from __future__ import annotations

import re
from pathlib import Path

from portal.config import load_config
from portal.web.app import create_app

HUGE_ID = "9" * 20  # past a signed 64-bit column: OverflowError in the driver


def api_routes(state_dir: Path) -> list[tuple[str, str]]:
    """(method, path) of every /customer/api and /operator/api route of the real app."""
    app = create_app(load_config(environ={"ISPEDGE_GENERAL_STATE_DIR": str(state_dir)}),
                     name=f"webguard_probe_{abs(hash(state_dir))}")
    out = set()
    for route in app.router.routes:
        path = "/" + route.path
        if path.startswith(("/customer/api/", "/operator/api/")):
            out |= {(method, path) for method in route.methods}
    return sorted(out)


def with_huge_ids(path: str) -> str:
    return re.sub(r"<\w+:int>", HUGE_ID, path)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
