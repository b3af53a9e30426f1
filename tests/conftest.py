"""Suite-wide rules.

ISPEDGE_NO_SKIP=1 (set by .ci/run) makes any skipped test fail the run: in CI
every integration test must really run.
"""

from __future__ import annotations

import os

import pytest

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and os.environ.get("ISPEDGE_NO_SKIP") == "1":
        _skipped.append(f"{report.nodeid}: {report.longrepr}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped:
        print("\nISPEDGE_NO_SKIP=1 but these tests skipped:")
        for line in _skipped:
            print("  " + line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
