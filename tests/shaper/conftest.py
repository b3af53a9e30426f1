"""Fixtures: the three-namespace lab and a Shaper on its edge namespace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shaper import Shaper
from tests.shaper.netlab import Lab
from tests.support.requirements import need_binary, need_root


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    need_root()
    need_binary("ip", "iproute2")
    need_binary("ss", "iproute2")
    lab = Lab(need_binary("iperf3"))
    try:
        lab.open()
        yield lab
    finally:
        lab.close()


@pytest.fixture
def shaper(lab: Lab) -> Iterator[Shaper]:
    s = Shaper("vd", "vu", netns=lab.edge)
    try:
        yield s
    finally:
        s.teardown()
        s.close()
