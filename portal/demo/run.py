"""`ispedge demo`: a working appliance on a laptop, with believable data.

Creates a SQLite database in WAL mode under --state-dir, two resellers (one a
sub-reseller with its own branding on cedar.localhost), plans with FUP tiers,
~50 subscribers and 60 days of RADIUS accounting written by a simulated NAS the
way FreeRADIUS writes it, turned into usage history by the real ingest; then
serves the portal with the enforcer, a DNS resolver and a demo ACS (WiFi tab).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from portal.config import Config
from portal.core import resellers, subscribers
from portal.demo import simnas
from portal.demo import traffic as traffic_mod
from portal.demo.enforcer import Child
from portal.demo.nbi_emulator import GenieAcsEmulator
from portal.errors import PortalError
from portal.speed import settings as speed_settings
from portal.store import db, migrations
from portal.store.models import Subscriber
from portal.store.tx import transaction
from portal.usage import days as days_mod
from portal.usage import ingest
from portal.usage.ingest import Settings

DEMO_LOGINS = (("alice@demo.net", "alice-pass"), ("omar@cedar.net", "omar-pass"))
FIRST = ["Alice", "Bilal", "Chloe", "Dani", "Elias", "Farah", "Georg", "Hana", "Ivan", "Jana",
         "Karim", "Lea", "Maya", "Nour", "Omar", "Pia", "Rami", "Sara", "Tarek", "Yara"]
LAST = ["Haddad", "Khoury", "Smith", "Nasser", "Müller", "Aoun", "Garcia", "Rahal", "Chen"]
GB = 10**9


async def create_demo_data(seed: int = 7, count: int = 50, days: int = 60,
                           now: datetime | None = None, timezone: str = "UTC") -> None:
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
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
    for i, (username, password) in enumerate(users):
        reseller = "cedar" if username.endswith("@cedar.net") else "demo"
        plan = rng.choice(["Fiber 10M", "Fiber 50M", "Fiber 100M"]) if i > 1 else "Fiber 50M"
        joined = now - timedelta(days=days + 5)
        full = f"{username.split('@')[0].rstrip('0123456789').title()} {rng.choice(LAST)}"
        if username == "omar@cedar.net":
            full = "عمر الحداد"
        await subscribers.add_subscriber(username, password, reseller, plan,
                                         full_name=full, email=username, now=joined)
        await subscribers.credit(username, rng.randrange(5, 60) * 100, "demo opening balance")
    # Cycles renew monthly: put each subscriber mid-cycle, as in real life.
    for sub in await Subscriber.all():
        start = now - timedelta(days=rng.randrange(1, 29), hours=rng.randrange(24))
        sub.cycle_start, sub.expires_at = start, start + timedelta(days=30)
        await sub.save(update_fields=["cycle_start", "expires_at"])
    await simulate_accounting(rng, [u for u, _ in users], now, days, days_mod.zone(timezone))


async def _nas_writes(starting: list[simnas.SimSession], running: list[simnas.SimSession],
                      stopping: list[simnas.SimSession], t: datetime,
                      tx: BaseDBAsyncClient) -> None:
    await simnas.start(starting, t)
    await simnas.interim(running, t)
    await simnas.stop(stopping, t)


# Share of a day's traffic in each local hour: quiet nights, busy evenings.
_WEIGHTS = [0.3] * 7 + [0.7] * 10 + [2.2] * 5 + [1.0] * 2
HOURLY = [w * 24 / sum(_WEIGHTS) for w in _WEIGHTS]


async def simulate_accounting(rng: random.Random, usernames: list[str], now: datetime,
                              days: int, tz: ZoneInfo, interim: timedelta = timedelta(hours=1)
                              ) -> None:
    """A NAS writes radacct as FreeRADIUS would; the ingest builds the history from it.

    Each subscriber has sessions of 20-96 h with short gaps; at every interim the
    NAS reports growing counters and the ingest runs, as the enforcer would.
    """
    settings = Settings(tz, interim_seconds=int(interim.total_seconds()))
    t = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    daily_gb = {u: rng.uniform(1, 12 if rng.random() < 0.2 else 5) for u in usernames}
    open_: dict[str, tuple[simnas.SimSession, datetime]] = {}
    next_start = {u: t + timedelta(minutes=rng.randrange(0, 120)) for u in usernames}
    share = interim.total_seconds() / 86400
    counter = 0
    while t < now:
        starting, stopping = [], []
        for i, u in enumerate(usernames):
            if u not in open_ and next_start[u] <= t:
                counter += 1
                s = simnas.SimSession(u, f"{i:04x}{counter:06x}",
                                      framed_ip=f"127.1.{i // 250}.{i % 250 + 2}")
                starting.append(s)
                open_[u] = (s, t + timedelta(hours=rng.randrange(20, 96)))
        running = []
        for u, (s, ends) in list(open_.items()):
            if s in starting:
                continue
            down = int(daily_gb[u] * GB * share * HOURLY[t.astimezone(tz).hour]
                       * rng.uniform(0.5, 1.5))
            s.bytes_out += down
            s.bytes_in += int(down * rng.uniform(0.05, 0.2))
            if ends <= t:
                stopping.append(s)
                del open_[u]
                next_start[u] = t + timedelta(minutes=rng.randrange(1, 30))
            else:
                running.append(s)
        await transaction(partial(_nas_writes, starting, running, stopping, t))
        await ingest.ingest_once(settings, t)
        t += interim
    # Two last interims a minute apart just before now: a fresh live rate.
    running = [s for s, _ in open_.values()]
    for ago in (90, 30):
        for s in running:
            s.bytes_out += int(rng.uniform(1, 40) * 10**6 / 8 * 60)
            s.bytes_in += int(rng.uniform(0.2, 4) * 10**6 / 8 * 60)
        await simnas.interim(running, now - timedelta(seconds=ago))
        await ingest.ingest_once(settings, now - timedelta(seconds=ago))


def start_traffic(config: Config, state: Path) -> Child:
    """The demo NAS's ongoing interims (portal.demo.traffic), a child process like the enforcer."""
    import subprocess
    import sys

    env = dict(os.environ, ISPEDGE_DATABASE_URL=config.database_url,
               ISPEDGE_DEMO_TIMEZONE=str(config.timezone))
    with (state / "traffic.log").open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "portal.demo.traffic"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Child(process)


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


# The demo's database holds Cleartext-Password rows and its state dir the token
# signing key: owner and group only, for everything this process and its children
# (enforcer, resolver) create.
DEMO_UMASK = 0o027


def restrict(state: Path, dbfile: Path) -> None:
    """Take group write and every "other" bit off what an earlier run (before the
    demo set its umask) left behind: the state dir, the database and its -wal/-shm,
    the token key, the logs and the resolver's state. Only files we own; nothing
    else under a --state-dir that happens to hold other things."""
    paths = [state, Path(f"{dbfile}-wal"), Path(f"{dbfile}-shm"), dbfile,
             state / "signing.keys", state / "jwt.key", *state.glob("*.log")]
    for root, dirs, files in os.walk(state / "dns"):
        paths += [Path(root, name) for name in [*dirs, *files]]
    uid = os.getuid()
    for path in paths:
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if st.st_uid == uid and not path.is_symlink():
            path.chmod(st.st_mode & 0o7777 & ~DEMO_UMASK)


def run_demo(args: argparse.Namespace, config: Config) -> int:
    if not args.state_dir.strip():
        raise PortalError("invalid_state_dir", "--state-dir must name a directory")
    os.umask(DEMO_UMASK)
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    dbfile = state / "ispedge.db"
    restrict(state, dbfile)
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{dbfile}{suffix}").unlink(missing_ok=True)
    raw = {k: dict(v) for k, v in config.raw.items()}
    raw["general"]["state_dir"] = str(state)
    raw["database"]["url"] = f"sqlite://{dbfile}"
    demo_config = Config(raw=raw, path=config.path)
    speed_settings.configure(demo_config)

    async def prepare() -> bool:
        await db.open_db(demo_config.database_url)
        try:
            await migrations.upgrade()
            if await Subscriber.all().count():
                return False
            await create_demo_data(timezone=demo_config.timezone)
            return True
        finally:
            await db.close_db()

    created = asyncio.run(prepare())

    async def dns_example() -> object:
        from portal.demo import parental

        await db.open_db(demo_config.database_url)
        try:
            return await parental.ensure_example()
        finally:
            await db.close_db()

    example = asyncio.run(dns_example())

    async def wifi() -> GenieAcsEmulator:
        from portal.demo import acs as demo_acs

        await db.open_db(demo_config.database_url)
        try:
            return await demo_acs.start()
        finally:
            await db.close_db()

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
    acs = asyncio.run(wifi())
    lines.append(f"WiFi:    demo ACS (GenieACS NBI emulator) {acs.url}: "
                 "a router for every demo subscriber")
    from portal.demo.enforcer import start_child
    from portal.web.serve import serve

    enforcer, enforcer_line = start_child(demo_config, state)
    lines.append(enforcer_line)
    traffic = start_traffic(demo_config, state)
    lines.append("Traffic: the demo NAS sends an Interim-Update every "
                 f"{traffic_mod.INTERVAL_S:g} s (live speeds move)")
    from portal.cli import dns

    resolver, dns_line = dns.start_demo(demo_config, state, example)
    lines.append(dns_line)
    try:
        from portal.cli.enforcer import problem_rows

        serve(demo_config, "127.0.0.1", port, on_ready="\n".join(lines), problems=problem_rows)
    finally:
        traffic.stop()
        enforcer.stop()
        if resolver is not None:
            resolver.stop()
        acs.stop()
    return 0
