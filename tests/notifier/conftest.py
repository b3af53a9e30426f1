"""Fixtures the notifier tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notifier.sinks import SmtpSink


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A local SMTP server (aiosmtpd) that keeps what it receives."""
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()
