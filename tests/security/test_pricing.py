"""Plan-change pricing under attack, against real portal processes (issue 15).

Found: the server priced a change at the client's `quoted_at` (anywhere in
[now - 15 min, now + 5 s]), so upgrading "late" and downgrading "early" netted
cents per round trip, with no limit on how often. Now a change is charged at the
server's price when it commits, capped by a quote the server signed, and a
subscriber may change plan `billing.plan_changes_per_day` times a day.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portal.store.models import AuditLog, Plan
from tests.portal.billing_helpers import bearer, customer, setup_resellers
from tests.security._pricing_helpers import (
    accepted_changes,
    balance,
    early,
    flip_mac,
    forged_time_body,
    late,
    quote,
    tamper_amount,
    wallet_matches_ledger,
)
from tests.support.portal import PortalServer, start_portal

START = 5000


@pytest.fixture
async def refunds(db: str) -> None:
    await setup_resellers(refund=True)
    await customer("ann@x", START, days_used=11)
    await customer("bob@x", START, days_used=11)


@pytest.fixture
def unlimited_portal(db_url: str, tmp_path: Path) -> Iterator[PortalServer]:
    """A portal that allows many changes a day, so only pricing stands in the way."""
    server = start_portal(db_url, tmp_path / "state", ISPEDGE_BILLING_PLAN_CHANGES_PER_DAY="1000")
    try:
        yield server
    finally:
        server.stop()


async def _plans() -> tuple[int, int]:
    basic = await Plan.get(name="Basic", reseller__name="acme")
    fast = await Plan.get(name="Fast", reseller__name="acme")
    return basic.id, fast.id


def _change(c: Any, h: dict[str, str], body: dict[str, Any]) -> Any:
    return c.post("/customer/api/plans/change", json=body, headers=h)


def _as_new_client(c: Any, h: dict[str, str], body: dict[str, Any]) -> Any:
    """Send the body; a 409 carrying a fresh quote is confirmed once with that quote
    (what the portal's own page does), so every round trip really changes plan."""
    r = _change(c, h, body)
    fresh = r.json().get("error", {}).get("quote") if r.status_code == 409 else None
    if fresh:
        r = _change(c, h, {"plan_id": body["plan_id"], "quote": fresh["quote"]})
    return r


async def test_round_trips_with_late_and_early_quoted_at_never_grow_the_balance(
        refunds: None, unlimited_portal: PortalServer):
    basic, fast = await _plans()
    h = bearer(unlimited_portal, "ann@x")
    with unlimited_portal.client() as c:
        for trip in range(15):
            up = await asyncio.to_thread(
                _as_new_client, c, h, forged_time_body(c, h, fast, late()))
            assert up.status_code == 200, (trip, up.text)
            down = await asyncio.to_thread(
                _as_new_client, c, h, forged_time_body(c, h, basic, early()))
            assert down.status_code == 200, (trip, down.text)
            assert await balance("ann@x") <= START, f"round trip {trip} made money"
    await wallet_matches_ledger("ann@x")
    assert await accepted_changes("ann@x") == 30


async def test_quote_tricks_are_refused_with_a_fresh_quote_and_move_no_money(
        refunds: None, unlimited_portal: PortalServer):
    basic, fast = await _plans()
    ann, bob = bearer(unlimited_portal, "ann@x"), bearer(unlimited_portal, "bob@x")
    with unlimited_portal.client() as c:
        # An older client: its own time (and the amount at that time), no signed quote.
        for at in (late(), early()):
            old = forged_time_body(c, ann, fast, at)
            old.pop("quote", None)
            r = _change(c, ann, old)
            assert r.status_code == 409, (old, r.text)
            assert r.json()["error"]["quote"]["plan_id"] == fast
        q = quote(c, ann, fast)
        assert "quoted_at" not in q and q["quote"]
        refused = [
            # another subscriber's quote for the same change
            {"plan_id": fast, "quote": quote(c, bob, fast)["quote"]},
            # tampered: a cheaper upgrade, a broken signature, garbage
            {"plan_id": fast, "quote": tamper_amount(q["quote"], 1)},
            {"plan_id": fast, "quote": flip_mac(q["quote"])},
            {"plan_id": fast, "quote": "x.y"},
            {"plan_id": fast, "quote": 12345},
            {"plan_id": fast, "quote": {"amount_cents": 1}},
            {"plan_id": fast, "quote": q["quote"] * 40},
        ]
        for body in refused:
            r = _change(c, ann, body)
            assert r.status_code == 409, (body, r.text)
            err = r.json()["error"]
            fresh = err["quote"]
            assert fresh["plan_id"] == fast and fresh["quote"], body
            assert fresh["amount_cents"] == err["amount_cents"] > 0
            assert await balance("ann@x") == START, body
        assert await accepted_changes("ann@x") == 0

        # The honest upgrade; then the same quote again and the other direction.
        up = _change(c, ann, {"plan_id": fast, "quote": q["quote"]})
        assert up.status_code == 200, up.text
        assert 0 < up.json()["amount_cents"] <= q["amount_cents"]
        after_up = await balance("ann@x")
        again = _change(c, ann, {"plan_id": fast, "quote": q["quote"]})
        assert again.status_code == 400 and again.json()["error"]["code"] == "same_plan"
        wrong_way = _change(c, ann, {"plan_id": basic, "quote": q["quote"]})
        assert wrong_way.status_code == 409
        assert wrong_way.json()["error"]["code"] == "quote_mismatch"
        # A bigger refund than quoted, by forging the amount of a real downgrade quote.
        d = quote(c, ann, basic)
        assert d["amount_cents"] < 0
        forged = _change(c, ann, {"plan_id": basic,
                                  "quote": tamper_amount(d["quote"], d["amount_cents"] - 500)})
        assert forged.status_code == 409
        assert await balance("ann@x") == after_up

        # Reusing a downgrade quote after going back up never refunds more than was paid.
        down = _change(c, ann, {"plan_id": basic, "quote": d["quote"]})
        assert down.status_code == 200, down.text
        assert d["amount_cents"] <= down.json()["amount_cents"] < 0
        up2 = _change(c, ann, {"plan_id": fast, "quote": quote(c, ann, fast)["quote"]})
        assert up2.status_code == 200, up2.text
        reuse = _change(c, ann, {"plan_id": basic, "quote": d["quote"]})
        assert reuse.status_code == 200, reuse.text
        assert -reuse.json()["amount_cents"] <= up2.json()["amount_cents"]
    assert await balance("ann@x") <= START
    assert await balance("bob@x") == START
    await wallet_matches_ledger("ann@x")
    assert await accepted_changes("ann@x") == 4


def _hammer(server: PortalServer, h: dict[str, str], tries: int, basic: int, fast: int,
            seen: list[tuple[int, str, str | None]], lock: threading.Lock) -> None:
    with server.client() as c:
        for _ in range(tries):
            listing = c.get("/customer/api/plans", headers=h)
            if listing.status_code != 200:
                with lock:
                    seen.append((listing.status_code, "list", None))
                continue
            target = basic if listing.json()["current_plan_id"] == fast else fast
            q = c.post("/customer/api/plans/quote", json={"plan_id": target}, headers=h)
            if q.status_code != 200:
                with lock:
                    seen.append((q.status_code, "quote", None))
                continue
            offer = q.json()  # the fields of any version of the API
            r = _change(c, h, {"plan_id": target, "quote": offer.get("quote"),
                               "amount_cents": offer["amount_cents"],
                               "quoted_at": offer.get("quoted_at")})
            code = r.json().get("error", {}).get("code", "") if r.status_code != 200 else "ok"
            with lock:
                seen.append((r.status_code, code, r.headers.get("retry-after")))


async def test_concurrent_changes_on_two_portals_never_exceed_the_daily_limit(
        refunds: None, portal_server: PortalServer, tmp_path: Path):
    basic, fast = await _plans()
    # A second instance on the same database with the same signing key.
    other_state = tmp_path / "state2"
    other_state.mkdir()
    shutil.copy(portal_server.state_dir / "signing.keys", other_state / "signing.keys")
    other = start_portal(portal_server.db_url, other_state)
    try:
        h = bearer(portal_server, "ann@x")
        seen: list[tuple[int, str, str | None]] = []
        lock = threading.Lock()
        threads = [threading.Thread(target=_hammer,
                                    args=(srv, h, 6, basic, fast, seen, lock))
                   for srv in (portal_server, other, portal_server, other)]
        await asyncio.to_thread(lambda: ([t.start() for t in threads],
                                         [t.join() for t in threads]))
        # Then one by one until the limit answers, in case the race left changes unused.
        for _ in range(6):
            if any(s[0] == 429 for s in seen):
                break
            await asyncio.to_thread(_hammer, other, h, 1, basic, fast, seen, lock)
    finally:
        other.stop()
    assert not [s for s in seen if s[0] >= 500], seen
    ok = [s for s in seen if s[0] == 200]
    limited = [s for s in seen if s[0] == 429]
    assert len(ok) == 3, seen  # the default billing.plan_changes_per_day
    assert limited and all(s[1] == "plan_change_limit" for s in limited), seen
    assert all(s[2] is not None and 0 < int(s[2]) <= 25 * 3600 for s in limited), seen
    assert await accepted_changes("ann@x") == 3
    refusals = await AuditLog.filter(username="ann@x", action="plan.change_refused").count()
    assert refusals == len(limited)
    assert await balance("ann@x") <= START
    await wallet_matches_ledger("ann@x")
