"""Concurrent purchases against the real portal process (SQLite, then PostgreSQL).

Money can be neither lost nor double-spent: of competing purchases only those the
balance covers succeed, an Idempotency-Key charges once, and afterwards every
balance equals its ledger and invoice numbers run without gaps.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from portal.store.models import Invoice, Plan, Subscriber, Topup
from tests.portal.billing_helpers import (
    bearer,
    counts,
    customer,
    invoice_numbers_gap_free,
    ledger_matches_balances,
    setup_resellers,
)
from tests.support.portal import PortalServer


async def _fire(server: PortalServer,
                requests: list[tuple[str, dict, dict]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as c:
        return list(await asyncio.gather(*(c.post(path, json=body, headers=headers)
                                           for path, body, headers in requests)))


@pytest.fixture
async def acme(db: str) -> None:
    await setup_resellers()


async def test_of_competing_purchases_only_the_affordable_one_succeeds(
        acme: None, portal_server: PortalServer):
    await customer("ann@x", 1500)  # exactly one 10 GB purchase
    h = bearer(portal_server, "ann@x")
    responses = await _fire(portal_server, [("/customer/api/data/buy", {"gb": 10}, h)] * 30)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 402: 29}, statuses
    sub = await Subscriber.get(username="ann@x")
    assert sub.balance_cents == 0
    assert await Topup.filter(subscriber_id=sub.id).count() == 1
    assert await Invoice.filter(subscriber_id=sub.id, kind="invoice").count() == 1
    await ledger_matches_balances()
    await invoice_numbers_gap_free()


async def test_many_subscribers_at_once_keep_ledger_and_numbers_exact(
        acme: None, portal_server: PortalServer):
    users = [f"u{i}@x" for i in range(12)]
    for u in users:
        await customer(u, 3000)  # affords two of the five purchases below
    headers = {u: bearer(portal_server, u) for u in users}
    requests = [("/customer/api/data/buy", {"gb": 10}, headers[u]) for u in users
                for _ in range(5)]
    responses = await _fire(portal_server, requests)
    assert Counter(r.status_code for r in responses) == {200: 24, 402: 36}
    for u in users:
        assert (await Subscriber.get(username=u)).balance_cents == 0
    assert await Invoice.filter(kind="invoice").count() == 24  # beside the credits' receipts
    await ledger_matches_balances()
    await invoice_numbers_gap_free()


async def test_concurrent_retries_with_one_idempotency_key_charge_once(
        acme: None, portal_server: PortalServer):
    await customer("ann@x", 9000)
    h = {**bearer(portal_server, "ann@x"), "Idempotency-Key": "retry-storm"}
    responses = await _fire(portal_server, [("/customer/api/data/buy", {"gb": 4}, h)] * 12)
    assert {r.status_code for r in responses} == {200}
    first = responses[0].json()
    assert all(r.json() == first for r in responses)  # every retry got the first answer
    sub = await Subscriber.get(username="ann@x")
    assert sub.balance_cents == 9000 - 600
    assert (await counts()).topups == 1
    await ledger_matches_balances()


async def test_concurrent_confirms_of_one_plan_change_apply_once(
        acme: None, portal_server: PortalServer):
    await customer("ann@x", 5000, days_used=10)
    fast = await Plan.get(name="Fast", reseller__name="acme")
    h = bearer(portal_server, "ann@x")
    with portal_server.client() as c:
        q = c.post("/customer/api/plans/quote", json={"plan_id": fast.id}, headers=h).json()
    body = {"plan_id": fast.id, "quote": q["quote"]}
    responses = await _fire(portal_server, [("/customer/api/plans/change", body, h)] * 10)
    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] == 1, statuses
    assert all(r.json()["error"]["code"] == "same_plan" for r in responses
               if r.status_code != 200)
    sub = await Subscriber.get(username="ann@x")
    assert sub.plan_id == fast.id and sub.balance_cents == 5000 - q["amount_cents"]
    assert await Invoice.filter(kind="invoice").count() == 1
    await ledger_matches_balances()
