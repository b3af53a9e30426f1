"""A top-up or plan change puts the effective speed in radreply in its own transaction,
so a reconnect right after the purchase gets the restored speed (no enforcer running)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portal.store.models import RadReply, UsageDaily
from tests.portal.billing_helpers import bearer, customer, setup_resellers
from tests.support.portal import PortalServer

GB = 10**9
PLAN = "5000k/10000k"  # Basic, MikroTik order: up/down
TIER1 = "1000k/2000k"  # Basic's monthly tier 1 past 100 GB


async def _in_tier(username: str, used_gb: int) -> None:
    await UsageDaily.create(username=username, day=datetime.now(UTC).date(),
                            bytes_in=0, bytes_out=used_gb * GB)
    # What the enforcer wrote when the tier was crossed.
    await RadReply.filter(username=username, attribute="Mikrotik-Rate-Limit").update(value=TIER1)


async def _reply(username: str) -> str:
    row = await RadReply.get(username=username, attribute="Mikrotik-Rate-Limit")
    return row.value


@pytest.fixture
async def acme(db: str) -> None:
    await setup_resellers()


async def test_top_up_that_lifts_the_tier_restores_radreply_at_once(
        acme: None, portal_server: PortalServer):
    await customer("fup@x", 5000)
    await _in_tier("fup@x", 105)
    with portal_server.client() as c:
        r = c.post("/customer/api/data/buy", json={"gb": 10}, headers=bearer(portal_server,
                                                                             "fup@x"))
    assert r.status_code == 200, r.text
    assert await _reply("fup@x") == PLAN


async def test_top_up_too_small_to_lift_the_tier_keeps_the_tier_speed(
        acme: None, portal_server: PortalServer):
    await customer("heavy@x", 5000)
    await _in_tier("heavy@x", 150)
    with portal_server.client() as c:
        r = c.post("/customer/api/data/buy", json={"gb": 10}, headers=bearer(portal_server,
                                                                             "heavy@x"))
    assert r.status_code == 200, r.text
    assert await _reply("heavy@x") == TIER1


async def test_plan_change_writes_the_new_plans_effective_speed(
        acme: None, portal_server: PortalServer):
    await customer("up@x", 10000, days_used=10)
    await _in_tier("up@x", 105)
    h = bearer(portal_server, "up@x")
    with portal_server.client() as c:
        plans = c.get("/customer/api/plans", headers=h).json()["plans"]
        fast = next(p for p in plans if p["name"] == "Fast")
        quote = c.post("/customer/api/plans/quote", json={"plan_id": fast["id"]}, headers=h)
        assert quote.status_code == 200, quote.text
        q = quote.json()
        r = c.post("/customer/api/plans/change", headers=h, json={
            "plan_id": fast["id"], "quote": q["quote"]})
    assert r.status_code == 200, r.text
    # Fast has no FUP tiers: the full plan speed, whatever was used.
    assert await _reply("up@x") == "20000k/50000k"


async def test_renewing_an_expired_subscriber_lifts_the_suspension_in_radreply(acme: None):
    from datetime import timedelta

    from portal.core import renewal
    from portal.store.models import ChangeJournal, Subscriber

    sub = await customer("late@x")
    now = datetime.now(UTC)
    await Subscriber.filter(id=sub.id).update(cycle_start=now - timedelta(days=40),
                                              expires_at=now - timedelta(days=10))
    # What the enforcer wrote when the subscription expired.
    await RadReply.filter(username="late@x").update(value="256k/256k")
    await renewal.renew_username("late@x", now, paid_by="free", reference="test")
    renewed = await Subscriber.get(id=sub.id)
    assert renewed.cycle_start == now and renewed.expires_at == now + timedelta(days=30)
    assert await _reply("late@x") == PLAN
    assert await ChangeJournal.filter(username="late@x", kind="status").count() == 1


async def test_renewing_early_prepays_the_next_cycle_and_keeps_this_one(acme: None):
    # The rule replaced "extends from the current expiry by moving cycle_start" (issue 19).
    from datetime import timedelta

    from portal.core import renewal
    from portal.store.models import Subscriber

    sub = await customer("early@x")
    result, _ = await renewal.renew_username("early@x", datetime.now(UTC), paid_by="free",
                                             reference="test", days=7)
    renewed = await Subscriber.get(id=sub.id)
    assert (renewed.cycle_start, renewed.expires_at) == (sub.cycle_start, sub.expires_at)
    assert result["renewal"]["starts_at"] == sub.expires_at.isoformat()
    assert result["renewal"]["expires_at"] == (sub.expires_at + timedelta(days=7)).isoformat()


async def test_reactivation_writes_the_effective_speed(acme: None):
    from portal.core import subscribers

    await customer("back@x")
    await _in_tier("back@x", 105)
    await subscribers.set_status("back@x", "disabled")
    assert await _reply("back@x") == "256k/256k"  # disabled: the suspended speed
    await subscribers.set_status("back@x", "active")
    assert await _reply("back@x") == TIER1  # active again, still past tier 1 this cycle


async def test_renew_refuses_a_nonsense_length(acme: None):
    from portal.core import renewal
    from portal.errors import PortalError

    await customer("odd@x")
    with pytest.raises(PortalError, match="1-3660 days"):
        await renewal.renew_username("odd@x", datetime.now(UTC), paid_by="free",
                                     reference="test", days=0)
