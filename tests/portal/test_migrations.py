"""Migrations build the same schema on SQLite and PostgreSQL (second pass)."""

from __future__ import annotations

from portal.store import db as pdb
from portal.store import migrations

RADIUS_COLUMNS = {
    "radcheck": {"id", "username", "attribute", "op", "value"},
    "radreply": {"id", "username", "attribute", "op", "value"},
    "radgroupcheck": {"id", "groupname", "attribute", "op", "value"},
    "radgroupreply": {"id", "groupname", "attribute", "op", "value"},
    "radusergroup": {"username", "groupname", "priority"},
    "radpostauth": {"id", "username", "pass", "reply", "authdate"},
    "nas": {"id", "nasname", "shortname", "type", "secret", "server", "profile", "coa_port"},
    "radacct": {"radacctid", "acctsessionid", "acctuniqueid", "username", "nasipaddress",
                "acctstarttime", "acctupdatetime", "acctstoptime", "acctinputoctets",
                "acctoutputoctets", "framedipaddress", "acctterminatecause"},
}


async def columns(table: str) -> set[str]:
    if pdb.current_dialect() == "sqlite":
        rows = await pdb.fetch(f"PRAGMA table_info({table})")
        return {r["name"].lower() for r in rows}
    rows = await pdb.fetch("SELECT column_name FROM information_schema.columns WHERE "
                          "table_name = ?", [table])
    return {r["column_name"].lower() for r in rows}


async def test_freeradius_tables_have_its_exact_names(db: str):
    for table, expected in RADIUS_COLUMNS.items():
        assert expected <= await columns(table), table


async def test_upgrade_twice_applies_nothing(db: str):
    assert await migrations.upgrade() == []
    assert not await migrations.pending()
    names = await migrations.applied()
    assert {"0001_radius", "0002_portal"} <= names
    assert all((migrations.SQL_DIR / f"{n}.{db_dialect()}.sql").exists() for n in names)


def db_dialect() -> str:
    return pdb.current_dialect()


async def test_every_migration_exists_for_both_dialects():
    sqlite = {m.name for m in migrations.available("sqlite")}
    postgres = {m.name for m in migrations.available("postgres")}
    assert sqlite == postgres


async def test_balance_can_never_go_negative_even_in_sql(db: str):
    import pytest
    from tortoise.exceptions import IntegrityError, OperationalError

    from tests.support import seed

    await seed.reseller_with_plans()
    sub = await seed.subscriber("neg@acme.net", balance_cents=100)
    with pytest.raises((IntegrityError, OperationalError)):
        await db_execute("UPDATE subscribers SET balance_cents = -1 WHERE id = ?", [sub.id])


async def db_execute(sql: str, params: list[object]) -> int:
    return await pdb.execute(sql, params)


async def test_dns_policy_view_follows_open_sessions(db: str):
    from datetime import UTC, datetime, timedelta

    from portal.store import radacct
    from portal.store.models import ParentalSettings
    from tests.support import seed

    await seed.reseller_with_plans(parental_enabled=True)
    sub = await seed.subscriber("kid@acme.net")
    await ParentalSettings.create(subscriber=sub, enabled=True, categories="adult,gambling")
    now = datetime.now(UTC)
    await radacct.insert_sessions([
        radacct.AcctSession("kid@acme.net", "s1", "127.0.0.1", now - timedelta(hours=2), None,
                            now - timedelta(hours=1), 1, 2, framed_ip="10.0.0.9"),
        radacct.AcctSession("kid@acme.net", "s2", "127.0.0.1", now, now, None, 1, 2,
                            framed_ip="10.0.0.10"),
    ])
    rows = await pdb.fetch("SELECT address, username, categories FROM dns_policy")
    assert rows == [{"address": "10.0.0.10", "username": "kid@acme.net",
                     "categories": "adult,gambling"}]


async def test_dashboard_usage_sum_reads_only_the_index(db: str):
    # The dashboard's per-request usage sum must not touch one table page per day.
    if pdb.current_dialect() == "sqlite":
        rows = await pdb.fetch("EXPLAIN QUERY PLAN SELECT SUM(bytes_in), SUM(bytes_out)"
                               " FROM usage_daily WHERE username = ? AND day >= ?",
                               ["alice", "2026-11-01"])
        assert any("COVERING INDEX idx_usage_daily_totals" in str(r["detail"]) for r in rows), rows
    else:
        rows = await pdb.fetch("SELECT indexdef FROM pg_indexes WHERE indexname = ?",
                               ["idx_usage_daily_totals"])
        assert rows and 'INCLUDE (bytes_in, bytes_out)' in rows[0]["indexdef"], rows
