"""Shared set-up for the billing tests: resellers, subscribers, row counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portal.core import subscribers
from portal.store.models import AuditLog, ChangeJournal, Invoice, Subscriber, Topup, WalletEntry
from tests.support import seed
from tests.support.portal import PortalServer

PASSWORD = "secret-pw"


@dataclass(frozen=True)
class Counts:
    wallet: int
    journal: int
    invoices: int
    topups: int
    audit: int


async def counts() -> Counts:
    return Counts(await WalletEntry.all().count(), await ChangeJournal.all().count(),
                  await Invoice.all().count(), await Topup.all().count(),
                  await AuditLog.all().count())


async def setup_resellers(*, plan_change: bool = True, refund: bool = False,
                          price_per_gb: str = "1.50", tax_rate: str = "11") -> None:
    await seed.reseller_with_plans("acme", allow_plan_change=plan_change,
                                   allow_downgrade_refund=refund, price_per_gb=price_per_gb,
                                   tax_rate=tax_rate)
    await subscribers.add_plan("acme", "Hidden", 100000, 50000, 5000, offered=False)
    await seed.reseller_with_plans("other", allow_plan_change=True, price_per_gb="1.00")


async def customer(username: str, balance_cents: int = 0, *, days_used: float = 0,
                   full_name: str = "Test Person", reseller: str = "acme") -> Subscriber:
    sub = await seed.subscriber(username, PASSWORD, reseller=reseller,
                                balance_cents=balance_cents)
    start = datetime.now(UTC) - timedelta(days=days_used)
    await Subscriber.filter(id=sub.id).update(cycle_start=start,
                                              expires_at=start + timedelta(days=30),
                                              full_name=full_name)
    return await Subscriber.get(id=sub.id)


def bearer(server: PortalServer, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.login(username, PASSWORD)}"}


async def ledger_matches_balances() -> None:
    """Every balance equals the sum of its ledger, and each entry's balance_after chains."""
    for sub in await Subscriber.all():
        entries = await WalletEntry.filter(subscriber_id=sub.id).order_by("id")
        assert sum(e.amount_cents for e in entries) == sub.balance_cents, sub.username
        running = 0
        for e in entries:
            running += e.amount_cents
            assert e.balance_after_cents == running, (sub.username, e.id)
        assert sub.balance_cents >= 0


async def invoice_numbers_gap_free() -> None:
    by_reseller: dict[tuple[int, int], list[int]] = {}
    for inv in await Invoice.all().order_by("id"):
        by_reseller.setdefault((inv.reseller_id, inv.year), []).append(inv.seq)
        assert inv.number == f"INV-{inv.year}-{inv.seq:06d}"
    for seqs in by_reseller.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
