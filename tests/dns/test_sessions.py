"""Sessions as deltas (dns_filter.sessions): the rules as plain values, and their
effect on the policy table."""

from __future__ import annotations

import pytest

from dns_filter.policy import ClientPolicies, PolicyRow, PolicyTable
from dns_filter.sessions import Edit, SessionIndex, SessionRow, address_key, served
from dns_filter.settings import DnsSettings


def session(radacctid: int, username: str = "alice", *, open_: bool = True, ip: str | None = None,
            v6: str | None = None, pd: str | None = None, categories: str = "adult",
            nas: str = "10.255.0.1") -> SessionRow:
    return SessionRow.from_view(radacctid, username, nas, 1 if open_ else 0, ip, v6, pd,
                                categories)


def mapped(edits: list[Edit]) -> dict[str, str | None]:
    return {e.address: (e.row.username if e.row else None) for e in edits}


def test_address_keys_are_canonical() -> None:
    assert address_key("10.0.0.5") == "10.0.0.5"
    assert address_key("10.0.0.5/32") == "10.0.0.5"
    assert address_key("2001:DB8:1:0::/56") == "2001:db8:1::/56"
    assert address_key("2001:db8:1::1/56") == "2001:db8:1::/56"  # host bits dropped
    assert address_key("10.0.0.0/24") is None  # a v4 network is no subscriber address
    assert address_key("") is None and address_key(None) is None and address_key("x") is None


def test_view_row_collects_every_address_once() -> None:
    row = session(1, ip="10.0.0.5", v6="2001:db8:1::/64", pd="2001:db8:2::/56")
    assert row.addresses == ("10.0.0.5", "2001:db8:1::/64", "2001:db8:2::/56")
    assert session(2, ip="", v6=None, pd="").addresses == ()
    assert session(3, v6="2001:db8:1::/64", pd="2001:db8:1::/64").addresses == ("2001:db8:1::/64",)
    assert session(4, open_=False).open is False


def test_start_maps_its_address_to_the_username_policy() -> None:
    index = SessionIndex()
    edits = index.apply(7, session(7, ip="10.0.0.5"))
    assert edits == [Edit("10.0.0.5", PolicyRow("10.0.0.5", "alice", "adult"))]


def test_prefix_first_in_an_interim_update_is_mapped_then() -> None:
    index = SessionIndex()
    assert mapped(index.apply(7, session(7, ip="10.0.0.5"))) == {"10.0.0.5": "alice"}
    edits = index.apply(7, session(7, ip="10.0.0.5", pd="2001:db8:5::/56"))
    assert mapped(edits) == {"2001:db8:5::/56": "alice"}  # the address maps already


def test_an_interim_that_changes_nothing_makes_no_edit() -> None:
    index = SessionIndex()
    index.apply(7, session(7, ip="10.0.0.5", pd="2001:db8:5::/56"))
    assert index.apply(7, session(7, ip="10.0.0.5", pd="2001:db8:5::/56")) == []
    # the subscriber's categories changed meanwhile (a parental switch): mapped again
    edits = index.apply(7, session(7, ip="10.0.0.5", categories="adult,gambling"))
    assert edits == [Edit("2001:db8:5::/56", None),
                     Edit("10.0.0.5", PolicyRow("10.0.0.5", "alice", "adult,gambling"))]
    # a session first seen after the full load maps its addresses at its first change
    assert mapped(index.apply(9, session(9, "bob", ip="10.0.0.6"))) == {"10.0.0.6": "bob"}


def test_stop_removes_the_mapping() -> None:
    index = SessionIndex()
    index.apply(7, session(7, ip="10.0.0.5", pd="2001:db8:5::/56"))
    edits = index.apply(7, session(7, open_=False, ip="10.0.0.5", pd="2001:db8:5::/56"))
    assert mapped(edits) == {"10.0.0.5": None, "2001:db8:5::/56": None}
    assert index.sessions == {} and index.holders == {}


def test_stop_keeps_an_address_another_open_session_holds() -> None:
    index = SessionIndex()
    index.apply(7, session(7, "alice", ip="10.0.0.5"))
    index.apply(9, session(9, "bob", ip="10.0.0.5", categories="gambling"))  # address reused
    edits = index.apply(7, session(7, "alice", open_=False, ip="10.0.0.5"))
    assert edits == [Edit("10.0.0.5", PolicyRow("10.0.0.5", "bob", "gambling"))]
    assert mapped(index.apply(9, session(9, "bob", open_=False, ip="10.0.0.5"))) == {
        "10.0.0.5": None}


def test_stop_of_a_session_known_only_from_the_full_load() -> None:
    # Opened before the resolver started: never followed, stopped now.
    assert mapped(SessionIndex().apply(3, session(3, open_=False, ip="10.0.0.5"))) == {
        "10.0.0.5": None}


def test_update_that_changes_the_address_moves_the_mapping() -> None:
    index = SessionIndex()
    index.apply(7, session(7, ip="10.0.0.5"))
    assert mapped(index.apply(7, session(7, ip="10.0.0.6"))) == {"10.0.0.5": None,
                                                                 "10.0.0.6": "alice"}


def test_row_not_served_or_gone_counts_as_stopped() -> None:
    index = SessionIndex()
    index.apply(7, session(7, ip="10.0.0.5"))
    assert mapped(index.apply(7, None)) == {"10.0.0.5": None}
    assert index.apply(8, None) == []  # never known: nothing to undo


def test_served_nas() -> None:
    assert served("10.255.0.1", None)
    assert served("10.255.0.1", frozenset({"10.255.0.1"}))
    assert not served("10.255.0.2", frozenset({"10.255.0.1"}))


def test_table_applies_edits_and_leaves_the_version_when_nothing_changed() -> None:
    table = PolicyTable()
    table.replace_all([PolicyRow("10.0.0.9", "zed", "")])
    policies = ClientPolicies(table, ["10.0.0.0/8", "2001:db8::/32"], ["doh"])
    index = SessionIndex()
    assert policies.categories_for("2001:db8:5::1") == {"doh"}
    edits = index.apply(7, session(7, ip="10.0.0.5", pd="2001:db8:5::/56"))
    assert table.apply_edits((e.address, e.row) for e in edits) == 2
    assert policies.categories_for("10.0.0.5") == {"adult"}
    assert policies.categories_for("2001:db8:5::1") == {"adult"}  # memo dropped
    version = table.version
    again = index.apply(7, session(7, ip="10.0.0.5", pd="2001:db8:5::/56"))  # interim, same
    assert again == []
    assert table.apply_edits((e.address, e.row) for e in again) == 0
    assert table.version == version
    stop = index.apply(7, session(7, open_=False, ip="10.0.0.5", pd="2001:db8:5::/56"))
    assert table.apply_edits((e.address, e.row) for e in stop) == 2
    assert policies.categories_for("10.0.0.5") == {"doh"}
    assert policies.categories_for("2001:db8:5::1") == {"doh"}
    assert table.by_username == {"zed": ["10.0.0.9"]}
    # a per-username reload after deltas still replaces exactly that username's rows
    table.apply_edits([("10.0.0.7", PolicyRow("10.0.0.7", "alice", "adult"))])
    table.replace_username("alice", [PolicyRow("10.0.0.8", "alice", "gambling")])
    assert table.v4 == {"10.0.0.9": frozenset(), "10.0.0.8": {"gambling"}}


def test_an_address_taken_over_by_another_username() -> None:
    table = PolicyTable()
    table.apply_edits([("10.0.0.5", PolicyRow("10.0.0.5", "alice", "adult"))])
    table.apply_edits([("10.0.0.5", PolicyRow("10.0.0.5", "bob", "adult"))])
    assert table.owner_of == {"10.0.0.5": "bob"} and table.by_username == {"bob": ["10.0.0.5"]}


def test_nas_setting() -> None:
    assert DnsSettings().served_nas() is None  # default: every NAS
    assert DnsSettings(nas="all").served_nas() is None
    assert DnsSettings(nas=["10.255.0.1", " 10.255.0.2"]).served_nas() == [
        "10.255.0.1", "10.255.0.2"]
    assert DnsSettings(nas="10.255.0.1,2001:DB8::1").served_nas() == ["10.255.0.1",
                                                                     "2001:db8::1"]
    assert DnsSettings(nas=[]).served_nas() == []
    with pytest.raises(ValueError, match="not a NAS IP address"):
        DnsSettings(nas=["nas-1"])
