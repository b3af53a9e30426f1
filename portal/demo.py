"""`ispedge demo`: a working appliance on a laptop, with believable data.

Creates a SQLite database in WAL mode under --state-dir, two resellers (one a
sub-reseller with its own branding on cedar.localhost), plans with FUP tiers,
~50 subscribers and 60 days of RADIUS accounting, then serves the portal.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tortoise.transactions import in_transaction

from portal import db, migrations, radacct, resellers, subscribers
from portal.config import Config
from portal.models import Subscriber

DEMO_LOGINS = (("alice@demo.net", "alice-pass"), ("omar@cedar.net", "omar-pass"))
FIRST = ["Alice", "Bilal", "Chloe", "Dani", "Elias", "Farah", "Georg", "Hana", "Ivan", "Jana",
         "Karim", "Lea", "Maya", "Nour", "Omar", "Pia", "Rami", "Sara", "Tarek", "Yara"]
LAST = ["Haddad", "Khoury", "Smith", "Nasser", "Müller", "Aoun", "Garcia", "Rahal", "Chen"]
GB = 10**9


async def create_demo_data(seed: int = 7, count: int = 50, days: int = 60,
                           now: datetime | None = None) -> None:
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    profile = "mikrotik"
    await subscribers.add_reseller("demo", company_name="Demo Fiber")
    await resellers.brand("demo", tagline="Fast, fair home internet",
                          footer_text="Demo Fiber · support@demo.net · +1 555 0100",
                          primary_color="#0b6bcb", registration="Demo Fiber LLC, Reg. 12345")
    await resellers.configure("demo", allow_plan_change=True, allow_downgrade_refund=True,
                              price_per_gb="1.50", parental_enabled=True, tax_rate="11")
    await subscribers.add_reseller("cedar", parent="demo", company_name="Cedar Net")
    await resellers.brand("cedar", tagline="شبكة الأرز — Cedar Net",
                          footer_text="Cedar Net · Beirut", primary_color="#1b7f3b",
                          custom_domain="cedar.localhost")
    await resellers.configure("cedar", price_per_gb="2.00", parental_enabled=True)
    tiers = [subscribers.parse_tier(t) for t in (
        "daily:1:20GB:5000/2000", "monthly:1:200GB:10000/5000", "monthly:2:300GB:4000/2000",
        "monthly:3:400GB:1000/1000")]
    for reseller in ("demo", "cedar"):
        await subscribers.add_plan(reseller, "Fiber 10M", 10000, 5000, 1500, quota_bytes=100 * GB,
                                   tiers=tiers[:2])
        await subscribers.add_plan(reseller, "Fiber 50M", 50000, 20000, 3000,
                                   quota_bytes=400 * GB, tiers=tiers)
        await subscribers.add_plan(reseller, "Fiber 100M", 100000, 50000, 4500)
    users = list(DEMO_LOGINS)
    while len(users) < count:
        first = rng.choice(FIRST).lower()
        name = f"{first}{len(users)}@{'demo' if len(users) % 3 else 'cedar'}.net"
        users.append((name, f"pw-{rng.randrange(10**6):06d}"))
    sessions: list[radacct.AcctSession] = []
    for i, (username, password) in enumerate(users):
        reseller = "cedar" if username.endswith("@cedar.net") else "demo"
        plan = rng.choice(["Fiber 10M", "Fiber 50M", "Fiber 100M"]) if i > 1 else "Fiber 50M"
        joined = now - timedelta(days=days + 5)
        full = f"{username.split('@')[0].rstrip('0123456789').title()} {rng.choice(LAST)}"
        if username == "omar@cedar.net":
            full = "عمر الحداد"
        await subscribers.add_subscriber(username, password, reseller, plan, profile=profile,
                                         full_name=full, email=username, now=joined)
        await subscribers.credit(username, rng.randrange(5, 60) * 100, "demo opening balance")
        sessions += _sessions(rng, username, i, now, days)
    # Cycles renew monthly: put each subscriber mid-cycle, as in real life.
    for sub in await Subscriber.all():
        start = now - timedelta(days=rng.randrange(1, 29), hours=rng.randrange(24))
        sub.cycle_start, sub.expires_at = start, start + timedelta(days=30)
        await sub.save(update_fields=["cycle_start", "expires_at"])
    async with in_transaction():
        await radacct.insert_sessions(sessions)


def _sessions(rng: random.Random, username: str, index: int, now: datetime, days: int
              ) -> list[radacct.AcctSession]:
    """Sessions of 1-4 days with evening-heavy daily volumes, the last one open."""
    out = []
    t = now - timedelta(days=days)
    heavy = rng.random() < 0.2
    n = 0
    while t < now:
        length = timedelta(hours=rng.randrange(20, 96))
        end = min(t + length, now)
        day_gb = rng.uniform(1, 12 if heavy else 5)
        down = int(day_gb * GB * (end - t).total_seconds() / 86400)
        up = int(down * rng.uniform(0.05, 0.2))
        is_open = end >= now
        session = radacct.AcctSession(
            username=username, acct_session_id=f"{index:04x}{n:04x}", nas_ip="127.0.0.1",
            start=t, update=end if is_open else None, stop=None if is_open else end,
            input_octets=up, output_octets=down,
            framed_ip=f"127.1.{index // 250}.{index % 250 + 2}" if is_open else "",
            terminate_cause="" if is_open else "User-Request",
        )
        if is_open:
            session = replace(session, update=now - timedelta(seconds=rng.randrange(10, 280)))
        out.append(session)
        t = end + timedelta(minutes=rng.randrange(1, 30))
        n += 1
    return out


def free_port(preferred: int) -> int:
    for port in [preferred, *range(preferred + 1, preferred + 50)]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_demo(args: argparse.Namespace, config: Config) -> int:
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    dbfile = state / "ispedge.db"
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{dbfile}{suffix}").unlink(missing_ok=True)
    raw = {k: dict(v) for k, v in config.raw.items()}
    raw["general"]["state_dir"] = str(state)
    raw["database"]["url"] = f"sqlite://{dbfile}"
    demo_config = Config(raw=raw, path=config.path)

    async def prepare() -> bool:
        await db.open_db(demo_config.database_url)
        try:
            await migrations.upgrade()
            if await Subscriber.all().count():
                return False
            await create_demo_data()
            return True
        finally:
            await db.close_db()

    created = asyncio.run(prepare())
    port = args.port or free_port(8080)
    url = f"http://127.0.0.1:{port}/customer/login"
    lines = [
        f"ispedge demo: database {dbfile} ({'created' if created else 'reused'}, SQLite WAL)",
        f"Portal:  {url}",
        f"         http://cedar.localhost:{port}/customer/login  (sub-reseller branding)",
        "Logins:  " + "   ".join(f"{u} / {p}" for u, p in DEMO_LOGINS),
    ]
    if args.no_serve:
        print("\n".join(lines))
        return 0
    from portal.serve import serve

    serve(demo_config, "127.0.0.1", port, on_ready="\n".join(lines))
    return 0
