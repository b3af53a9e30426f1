"""Issue 18: the demo's live speed moves (portal.demo.traffic writes interims as a NAS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from portal.demo import simnas, traffic
from portal.usage import ingest, live
from tests.support import seed


async def test_each_round_gives_a_new_live_rate(db: str) -> None:
    await seed.reseller_with_plans()
    await seed.subscriber("maya@acme.net", "maya-pass")
    now = datetime.now(UTC)
    s = simnas.SimSession("maya@acme.net", "s1", framed_ip="10.0.0.7")
    await simnas.start([s], now - timedelta(seconds=120))
    s.bytes_out, s.bytes_in = 10**8, 10**7
    await simnas.interim([s], now - timedelta(seconds=60))
    await ingest.ingest_once(ingest.Settings(ZoneInfo("UTC"), interim_seconds=60),
                             now - timedelta(seconds=60))
    source = live.AccountingLive()
    seen = []
    for _ in range(3):
        await traffic.run(db, ZoneInfo("UTC"), interval_s=1.0, rounds=1, keep_open=True)
        sample = await source.sample("maya@acme.net", datetime.now(UTC))
        assert sample.online and sample.down_bps > 0 and sample.up_bps > 0
        seen.append((sample.sampled_at, sample.down_bps))
    assert len({t for t, _ in seen}) == 3  # a fresh interim each round
    assert len({r for _, r in seen}) >= 2  # and the figure moves
