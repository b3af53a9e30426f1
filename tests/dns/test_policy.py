"""Who is asking: exact IPv4, longest IPv6 prefix, served networks, per-username updates."""

from __future__ import annotations

from dns_filter.policy import ClientPolicies, PolicyRow, PolicyTable, parse_categories


def table(*rows: tuple[str, str, str]) -> PolicyTable:
    t = PolicyTable()
    t.replace_all(PolicyRow(*r) for r in rows)
    return t


def test_parse_categories() -> None:
    assert parse_categories(" adult, gambling ,,") == {"adult", "gambling"}
    assert parse_categories("") == frozenset() and parse_categories(None) == frozenset()


def test_ipv4_exact_and_served_defaults_and_refused() -> None:
    t = table(("10.0.0.5", "alice", "adult"), ("10.0.0.6", "bob", ""))
    c = ClientPolicies(t, ["10.0.0.0/8", "2001:db8::/32"], ["doh"])
    assert c.categories_for("10.0.0.5") == {"adult"}
    assert c.categories_for("10.0.0.6") == frozenset()  # a subscriber with nothing blocked
    assert c.categories_for("10.9.9.9") == {"doh"}  # served, no subscriber: operator default
    assert c.categories_for("192.0.2.1") is None  # outside: REFUSED
    assert c.categories_for("not-an-ip") is None
    assert c.categories_for("::ffff:10.0.0.5") == {"adult"}  # v4-mapped on a dual-stack socket


def test_ipv6_longest_prefix_wins() -> None:
    t = table(
        ("2001:db8:1::/48", "isp-block", "gambling"), ("2001:db8:1:100::/56", "carol", "adult")
    )
    c = ClientPolicies(t, ["2001:db8::/32"], [])
    assert c.categories_for("2001:db8:1:100::42") == {"adult"}
    assert c.categories_for("2001:db8:1:200::1") == {"gambling"}
    assert c.categories_for("2001:db8:2::1") == frozenset()
    assert c.categories_for("2001:db9::1") is None


def test_replace_username_updates_only_that_subscriber_and_invalidates_memo() -> None:
    t = table(
        ("10.0.0.5", "alice", "adult"),
        ("10.0.0.6", "bob", "gambling"),
        ("2001:db8:5::/56", "alice", "adult"),
    )
    c = ClientPolicies(t, ["10.0.0.0/8", "2001:db8::/32"], ["doh"])
    assert c.categories_for("2001:db8:5::1") == {"adult"}
    assert c.categories_for("10.0.0.7") == {"doh"}
    # alice moved to a new address (session changed) and now blocks gambling
    t.replace_username("alice", [PolicyRow("10.0.0.7", "alice", "gambling")])
    assert c.categories_for("10.0.0.5") == {"doh"}
    assert c.categories_for("10.0.0.7") == {"gambling"}
    assert c.categories_for("2001:db8:5::1") == {"doh"}
    assert c.categories_for("10.0.0.6") == {"gambling"}
    assert len(t) == 2
    t.replace_username("alice", [])
    assert len(t) == 1


def test_malformed_rows_are_skipped() -> None:
    t = table(("garbage", "x", "adult"), ("10.0.0.0/24", "y", "adult"), ("10.0.0.1", "z", "adult"))
    assert len(t) == 1
    assert sorted(r.address for r in t.rows()) == ["10.0.0.1"]


def test_net_edits_keep_the_last_edit_per_address_and_only_what_changes() -> None:
    table = PolicyTable.build([PolicyRow("10.0.0.5", "alice", "adult"),
                               PolicyRow("2001:db8:1::/56", "alice", "adult")])
    same = PolicyRow("10.0.0.5", "alice", "adult")
    other = PolicyRow("10.0.0.5", "bob", "gambling")
    # an interim of a session the table holds already: nothing for the answer thread
    assert table.net_edits([("10.0.0.5", same)]) == {}
    # a stop and a start of the same address in one batch: the last one counts
    assert table.net_edits([("10.0.0.5", other), ("10.0.0.5", same)]) == {}
    assert table.net_edits([("10.0.0.5", None), ("10.0.0.5", other)]) == {"10.0.0.5": other}
    # a removal of what is not there, and of what is
    assert table.net_edits([("10.0.0.9", None), ("2001:db8:1::/56", None)]) == {
        "2001:db8:1::/56": None}
    # the same categories in another order are the same policy
    assert table.net_edits([("10.0.0.5", PolicyRow("10.0.0.5", "alice", " adult,"))]) == {}
    # applying the net edits gives what applying every edit in order gives
    edits = [("10.0.0.5", other), ("10.0.0.6", PolicyRow("10.0.0.6", "alice", "adult")),
             ("10.0.0.6", None), ("10.0.0.7", PolicyRow("10.0.0.7", "bob", "doh"))]
    a, b = (PolicyTable.build([same]) for _ in range(2))
    a.apply_edits(edits)
    b.apply_edits(b.net_edits(edits).items())
    assert (a.v4, a.owner_of, a.by_username) == (b.v4, b.owner_of, b.by_username)
