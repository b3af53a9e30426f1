"""The resolver's side of the database URL contract (dns_filter.dburl): the policy
reader and the block log accept and refuse exactly what the parser does."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from dns_filter import dburl
from dns_filter.block_log import BlockLogDatabase
from dns_filter.policy_db import PolicyDatabase
from tests.support.dburl_cases import ACCEPTED, REJECTED


@pytest.mark.parametrize(("url", "dialect", "path", "dsn"), ACCEPTED)
def test_accepted(url: str, dialect: str, path: str, dsn: str) -> None:
    parsed = dburl.parse(url)
    assert (parsed.kind, parsed.path, parsed.dsn) == (dialect, path, dsn)
    assert parsed.mark == ("?" if dialect == "sqlite" else "%s")
    assert dburl.dialect_of(url) == dialect
    if dialect == "postgres":
        conninfo_to_dict(parsed.dsn)  # libpq takes it, whatever scheme the URL had
        with pytest.raises(ValueError, match="not a SQLite database URL"):
            dburl.sqlite_path(url)
    else:
        assert dburl.sqlite_path(url) == path
    for reader in (PolicyDatabase(url), BlockLogDatabase(url)):
        assert (reader.kind, reader.path, reader.dsn) == (dialect, path, dsn)


@pytest.mark.parametrize("url", REJECTED)
def test_refused_with_one_message(url: str) -> None:
    with pytest.raises(ValueError) as refused:
        dburl.parse(url)
    message = str(refused.value)
    assert message.startswith("unsupported database URL (scheme ")
    assert "s3cret" not in message  # the URL may hold a password: never echoed
    for reader in (PolicyDatabase, BlockLogDatabase):
        with pytest.raises(ValueError) as also:
            reader(url)
        assert str(also.value) == message
