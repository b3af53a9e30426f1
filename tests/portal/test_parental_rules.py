"""Parental business rules as plain functions (no server, no database)."""

from __future__ import annotations

from datetime import date

import pytest

from portal.core import parental
from portal.core.parental import Choice, apply_change
from portal.errors import PortalError

ALL = ["adult", "gambling", "social-media", "doh", "vpn"]


def test_available_categories_builtin_order_then_operator_sorted() -> None:
    got = parental.available_categories(["doh", "adult", "social-media", "gambling"],
                                        ["vpn", " ", "adult"], ["malware", "vpn"])
    assert got == ["adult", "gambling", "social-media", "doh", "malware", "vpn"]


def test_categories_from_config_lists_the_shipped_lists_and_the_operators() -> None:
    class Cfg:
        def section(self, name: str) -> dict[str, object]:
            assert name == "blocklists"
            return {"extra_categories": ["vpn"], "sources": {"malware": ["/x.txt"]}}

    assert parental.categories_from_config(Cfg()) == [
        "adult", "gambling", "social-media", "doh", "malware", "vpn"]


def test_labels() -> None:
    assert parental.label("social-media") == "Social media"
    assert parental.label("crypto_mining") == "Crypto mining"


def test_stored_text_keeps_only_known_categories_sorted() -> None:
    assert parental.parse_stored("gambling, adult,,gone", ALL) == ("adult", "gambling")
    assert parental.parse_stored("", ALL) == ()


@pytest.mark.parametrize(("current", "body", "expected"), [
    (Choice(False, ()), {"enabled": True}, Choice(True, ())),
    (Choice(True, ("adult",)), {"enabled": False}, Choice(False, ("adult",))),
    # a category switched on while off switches the master on
    (Choice(False, ()), {"categories": {"gambling": True}}, Choice(True, ("gambling",))),
    # ...unless the same request says enabled: false
    (Choice(False, ()), {"enabled": False, "categories": {"gambling": True}},
     Choice(False, ("gambling",))),
    (Choice(True, ("adult", "gambling")), {"categories": {"gambling": False}},
     Choice(True, ("adult",))),
    # switching a category off never switches the master
    (Choice(False, ("adult",)), {"categories": {"adult": False}}, Choice(False, ())),
    (Choice(True, ()), {"categories": {"vpn": True, "adult": True}},
     Choice(True, ("adult", "vpn"))),
    (Choice(True, ("adult",)), {"categories": {"adult": True}}, Choice(True, ("adult",))),
])
def test_apply_change(current: Choice, body: dict[str, object], expected: Choice) -> None:
    assert apply_change(current, body, ALL) == expected


@pytest.mark.parametrize(("body", "code"), [
    ({}, "invalid_parental_change"),
    ({"username": "bob"}, "invalid_parental_change"),
    ({"enabled": "yes"}, "invalid_parental_change"),
    ({"enabled": 1}, "invalid_parental_change"),
    ({"categories": ["adult"]}, "invalid_parental_change"),
    ({"categories": {"adult": "on"}}, "invalid_parental_change"),
    ({"categories": {"weapons": True}}, "unknown_category"),
])
def test_apply_change_refuses_bad_bodies(body: dict[str, object], code: str) -> None:
    with pytest.raises(PortalError) as err:
        apply_change(Choice(False, ()), body, ALL)
    assert err.value.code == code and err.value.status == 400


def test_window_is_seven_days_including_today() -> None:
    assert parental.window_start(date(2026, 3, 7)) == date(2026, 3, 1)
    assert parental.window_start(date(2026, 3, 1), 1) == date(2026, 3, 1)


def test_counts_by_category_fills_zeros_and_keeps_unlisted() -> None:
    rows = [{"category": "adult", "count": 3}, {"category": "adult", "count": 2},
            {"category": "retired", "count": 1}]
    assert parental.counts_by_category(rows, ["adult", "gambling"]) == {
        "adult": 5, "gambling": 0, "retired": 1}


def test_recent_entries_newest_first_one_per_domain_limited() -> None:
    rows = [{"domain": "a.com", "category": "adult", "blocked_at": 100.0},
            {"domain": "b.com", "category": "gambling", "blocked_at": 300.0},
            {"domain": "a.com", "category": "adult", "blocked_at": 200.0},
            {"domain": "c.com", "category": "doh", "blocked_at": 50}]
    got = parental.recent_entries(rows, limit=2)
    assert [r["domain"] for r in got] == ["b.com", "a.com"]
    assert got[1]["blocked_at"] == "1970-01-01T00:03:20+00:00"
