"""The portal's side of the database URL contract: portal.store.db accepts and
refuses exactly what dns_filter.dburl (the resolver's parser) does, and both sides
open the same database under every accepted scheme."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from tortoise.transactions import in_transaction

from dns_filter import dburl
from dns_filter.policy_db import PolicyDatabase
from portal.store import db as pdb
from tests.support.dburl_cases import ACCEPTED, REJECTED


@pytest.fixture(scope="module")
def portal_db() -> ModuleType:
    assert pdb.dburl is dburl  # the portal parses URLs with the resolver's parser
    return pdb


@pytest.mark.parametrize(("url", "dialect", "path", "dsn"), ACCEPTED)
def test_portal_accepts_what_the_resolver_accepts(portal_db: ModuleType, url: str, dialect: str,
                                                  path: str, dsn: str) -> None:
    assert portal_db.dialect_of(url) == dialect == dburl.dialect_of(url)
    if dialect == "sqlite":
        assert portal_db.sqlite_path(url) == Path(path)


@pytest.mark.parametrize("url", REJECTED)
def test_portal_refuses_what_the_resolver_refuses_with_the_same_message(
        portal_db: ModuleType, url: str) -> None:
    with pytest.raises(ValueError) as resolver:
        dburl.parse(url)
    with pytest.raises(ValueError) as portal:
        portal_db.dialect_of(url)
    assert str(portal.value) == str(resolver.value)


def _schemes(url: str) -> list[str]:
    rest = url.split("://", 1)[1]
    if url.startswith("sqlite"):
        return [url]
    return [f"{scheme}://{rest}" for scheme in sorted(dburl.POSTGRES_SCHEMES)]


async def test_both_sides_open_the_same_database_under_every_scheme(db_url: str) -> None:
    from portal.store import journal
    from portal.store.models import ChangeJournal

    await pdb.open_db(db_url)
    try:
        async with in_transaction() as tx:
            await journal.record(tx, "ann", "plan", plan_id=1)
        head = (await ChangeJournal.all().order_by("-id").first()).id  # type: ignore[union-attr]
    finally:
        await pdb.close_db()
    for url in _schemes(db_url):
        await pdb.open_db(url)
        try:
            assert await ChangeJournal.all().count() == 1
        finally:
            await pdb.close_db()
        reader = PolicyDatabase(url)
        try:
            assert reader.journal_head() == head
            assert reader.changes_since(0) == [(head, "ann", "plan")]
        finally:
            reader.close()
