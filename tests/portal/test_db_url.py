"""The portal's side of the database URL contract: portal.store.db accepts and
refuses exactly what dns_filter.dburl (the resolver's parser) does, and both sides
open the same database under every accepted scheme."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from tortoise.transactions import in_transaction

from dns_filter import dburl
from dns_filter.policy_db import PolicyDatabase
from portal.store import db as pdb
from tests.support.dburl_cases import ACCEPTED, REJECTED

ROOT = Path(__file__).resolve().parents[2]
PATCH = ROOT / "db_url.patch"


@pytest.fixture(scope="module")
def portal_db(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """portal.store.db; until db_url.patch is applied to it (portal/store/db.py is being
    reworked on another branch), a copy of it with the patch applied."""
    if getattr(pdb, "dburl", None) is dburl or not PATCH.exists():
        return pdb
    work = tmp_path_factory.mktemp("patched")
    target = work / "portal" / "store" / "db.py"
    target.parent.mkdir(parents=True)
    target.write_text((ROOT / "portal" / "store" / "db.py").read_text())
    subprocess.run(["git", "apply", str(PATCH)], cwd=work, check=True)
    spec = importlib.util.spec_from_file_location("portal_store_db_patched", target)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.dburl is dburl
    return module


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
