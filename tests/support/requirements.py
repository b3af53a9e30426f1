"""Skips for tests that need a real component.

On a newcomer's machine a missing component skips the test with a reason that
says how to get it. CI sets ISPEDGE_NO_SKIP=1, and tests/conftest.py turns every
skip into a failure there, so an integration test can never silently not run.
"""

from __future__ import annotations

import os
import shutil

import pytest


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, tc): run the suite as root")


def need_binary(name: str, package: str | None = None) -> str:
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    if path is None:
        pytest.skip(f"needs {name}: apt-get install {package or name}")
    return path


def need_chromium() -> str:
    return need_binary("chromium", "chromium")


def need_mmsg() -> None:
    from dns_filter import udp

    if udp._mmsg is None:
        pytest.skip("needs the C module dns_filter._mmsg: `pip install -e .` with gcc and "
                    "the Python headers (python3-dev) builds it")
