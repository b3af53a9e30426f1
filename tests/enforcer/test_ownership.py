"""The edge-box ownership rules (portal/enforcer/ownership.py): plain values, no database."""

from __future__ import annotations

import pytest

from portal.enforcer.ownership import (
    NONE,
    closes_stale,
    live_boxes,
    nas_owner,
    parse_networks,
    responsible,
    session_targets,
    unowned,
)

NETS = parse_networks(["100.64.1.0/24", "2001:db8:1::/48"])
ONE = frozenset({"edge-1"})
TWO = frozenset({"edge-1", "edge-2"})


def test_live_boxes_counts_those_seen_within_60_s_and_always_me() -> None:
    seen = {"edge-1": 1000.0, "edge-2": 941.0, "edge-3": 939.0}
    assert live_boxes(seen, None, 1000.0) == {"edge-1", "edge-2"}
    assert live_boxes(seen, "edge-9", 1000.0) == {"edge-1", "edge-2", "edge-9"}
    assert live_boxes({}, "edge-1", 1000.0) == ONE
    assert live_boxes({}, None, 1000.0) == frozenset()


def test_nas_owner_named_box_if_live_else_unowned() -> None:
    assert nas_owner("edge-2", TWO).box == "edge-2"
    silent = nas_owner("edge-3", TWO)
    assert silent.box is None and "edge-3 has not been seen for 60 s" in silent.problem


def test_nas_with_no_box_is_the_only_boxs_and_unowned_among_several() -> None:
    assert nas_owner(None, ONE).box == "edge-1"
    several = nas_owner(None, TWO)
    assert several.box is None
    assert "no box named and 2 boxes" in several.problem and "--box" in several.problem
    assert nas_owner(None, frozenset()).box is None


def test_coa_target_only_on_the_owning_box() -> None:
    nas = {"10.0.0.1": "edge-1", "10.0.0.2": "edge-2", "10.0.0.3": None}
    assert session_targets("10.0.0.1", "100.64.1.5", nas, "edge-1", TWO, False, ()) == [
        "nas:10.0.0.1"]
    assert session_targets("10.0.0.2", "100.64.1.5", nas, "edge-1", TWO, False, ()) == []
    assert session_targets("10.0.0.2", "100.64.1.5", nas, "edge-2", TWO, False, ()) == [
        "nas:10.0.0.2"]
    # no box named, two boxes: nobody (status reports it)
    assert session_targets("10.0.0.3", "100.64.1.5", nas, "edge-1", TWO, False, ()) == []
    assert session_targets("10.0.0.3", "100.64.1.5", nas, "edge-2", TWO, False, ()) == []
    # ... and a single box owns it with no configuration
    assert session_targets("10.0.0.3", "100.64.1.5", nas, "edge-1", ONE, False, ()) == [
        "nas:10.0.0.3"]


def test_shaper_target_by_configured_networks_on_a_nas_or_not() -> None:
    nas = {"10.0.0.1": "edge-2"}
    assert session_targets("10.0.0.1", "100.64.1.5", nas, "edge-1", TWO, True, NETS) == [
        "shaper:edge-1"]
    assert session_targets("10.0.0.9", "2001:db8:1::7", nas, "edge-1", TWO, True, NETS) == [
        "shaper:edge-1"]
    assert session_targets("10.0.0.9", "100.64.2.5", nas, "edge-1", TWO, True, NETS) == []
    # the owner of the NAS sends CoA and, when the address is in its networks, shapes too
    assert session_targets("10.0.0.1", "100.64.1.5", nas, "edge-2", TWO, True, NETS) == [
        "nas:10.0.0.1", "shaper:edge-2"]
    # shaper off: the networks mean nothing
    assert session_targets("10.0.0.9", "100.64.1.5", nas, "edge-1", TWO, False, NETS) == []


def test_shaper_without_networks_shapes_sessions_on_no_nas_only_when_alone() -> None:
    nas = {"10.0.0.1": None}
    assert session_targets("10.0.0.9", "100.64.2.5", nas, "edge-1", ONE, True, ()) == [
        "shaper:edge-1"]
    assert session_targets("10.0.0.1", "100.64.2.5", nas, "edge-1", ONE, True, ()) == [
        "nas:10.0.0.1"]
    assert session_targets("10.0.0.9", "100.64.2.5", nas, "edge-1", TWO, True, ()) == []
    # no usable address: nothing to classify on, so unenforced (single box)
    assert session_targets("10.0.0.9", "", nas, "edge-1", ONE, True, ()) == [NONE]


def test_unenforced_none_only_for_a_single_box() -> None:
    assert session_targets("10.0.0.9", "100.64.2.5", {}, "edge-1", ONE, False, ()) == [NONE]
    assert session_targets("10.0.0.9", "100.64.2.5", {}, "edge-1", TWO, False, ()) == []


def test_a_box_deletes_only_rows_of_its_own_targets() -> None:
    nas = {"10.0.0.1": "edge-1", "10.0.0.2": "edge-2"}
    assert responsible("shaper:edge-1", "edge-1", nas, TWO)
    assert not responsible("shaper:edge-2", "edge-1", nas, TWO)
    assert responsible("nas:10.0.0.1", "edge-1", nas, TWO)
    assert not responsible("nas:10.0.0.2", "edge-1", nas, TWO)
    assert responsible("nas:10.9.9.9", "edge-1", nas, TWO)  # NAS removed from the table
    assert responsible(NONE, "edge-1", nas, TWO)


def test_stale_sessions_closed_by_the_nas_owner() -> None:
    nas = {"10.0.0.1": "edge-1", "10.0.0.2": "edge-2", "10.0.0.3": None}
    assert closes_stale("10.0.0.1", nas, "edge-1", TWO)
    assert not closes_stale("10.0.0.2", nas, "edge-1", TWO)
    assert not closes_stale("10.0.0.3", nas, "edge-1", TWO)
    assert closes_stale("10.0.0.3", nas, "edge-1", ONE)
    assert closes_stale("10.9.9.9", nas, "edge-1", TWO)  # not in the nas table: anyone


def test_unowned_lists_nases_and_silent_shapers() -> None:
    nas = {"10.0.0.1": "edge-1", "10.0.0.2": "edge-3", "10.0.0.3": None}
    found = unowned(nas, TWO, {"10.0.0.2": 4}, {"shaper:edge-1": 2, "shaper:edge-3": 5})
    assert [(u.target, u.sessions) for u in found] == [
        ("nas:10.0.0.2", 4), ("nas:10.0.0.3", 0), ("shaper:edge-3", 5)]
    assert "edge-3 has not been seen" in found[0].problem
    assert unowned({"10.0.0.3": None}, ONE, {}, {"shaper:edge-1": 1}) == []


@pytest.mark.parametrize("bad", ["100.64.0.0/33", "edge", ""])
def test_bad_shaped_networks_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="shaped_networks"):
        parse_networks([bad])
