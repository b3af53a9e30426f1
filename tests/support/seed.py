"""Small, explicit test data built with the same domain functions operators use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal.core import operators, resellers, subscribers
from portal.store.models import Subscriber
from portal.store.radacct import AcctSession


async def reseller_with_plans(name: str = "acme", parent: str | None = None,
                              **settings: object) -> None:
    await subscribers.add_reseller(name, parent=parent, company_name=f"{name.title()} Net")
    if settings:
        await resellers.configure(name, **settings)  # type: ignore[arg-type]
    await subscribers.add_plan(name, "Basic", 10000, 5000, 1500, quota_bytes=100 * 10**9,
                               tiers=[subscribers.parse_tier("monthly:1:100GB:2000/1000")])
    await subscribers.add_plan(name, "Fast", 50000, 20000, 3000)


async def subscriber(username: str, password: str = "secret-pw", reseller: str = "acme",
                     plan: str = "Basic", balance_cents: int = 0,
                     now: datetime | None = None) -> Subscriber:
    sub = await subscribers.add_subscriber(username, password, reseller, plan,
                                           full_name="Test Person", now=now or datetime.now(UTC))
    if balance_cents:
        await subscribers.credit(username, balance_cents, "test")
    return await Subscriber.get(id=sub.id)


async def console_operators(password: str) -> str:
    """The operator console's cast, under the resellers acme and its child cedar: boss
    (admin, the ISP's staff), helen (support), cedarop (admin of cedar only), tina
    (TOTP on: her secret is returned) and ed (no TOTP yet, to enroll)."""
    await operators.add("boss", password)
    await operators.add("helen", password, role="support")
    await operators.add("cedarop", password, reseller="cedar")
    await operators.add("tina", password)
    await operators.add("ed", password)
    secret = await operators.enroll_totp("tina")
    assert secret is not None
    return secret


def online(username: str, address: str) -> AcctSession:
    """An open accounting session (started an hour ago, NAS 127.0.0.1) giving the
    subscriber `address`: what the resolver and the enforcer read as "online there"."""
    start = datetime.now(UTC) - timedelta(hours=1)
    return AcctSession(username, f"s-{address}", "127.0.0.1", start, start, None, 0, 0,
                       framed_ip=address)
