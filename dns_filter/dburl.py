"""The database URL contract: the one parser of database URLs.

The resolver (policy reader, block log) and the portal (portal.store.db, which
delegates here) accept exactly the same URLs:

- `sqlite://<path>`: the SQLite file at <path>, as written (Tortoise style:
  `sqlite:///var/lib/ispedge/ispedge.db` is absolute, `sqlite://x.db` relative to
  the working directory); a `?query` is not part of the path; an empty path is refused.
- `postgres://`, `postgresql://`, `asyncpg://` or `psycopg://` followed by
  `user:password@host:port/db?options`: PostgreSQL. `dsn` is the same URL as
  libpq (psycopg) takes it, with the scheme `postgresql://`.

Schemes are case-insensitive. A URL with control characters (NUL, newline) is
refused. Anything else raises ValueError with one message,
which names the scheme only (never the rest of the URL: it may hold a password).
"""

from __future__ import annotations

from dataclasses import dataclass

SQLITE_SCHEMES = frozenset({"sqlite"})
POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "asyncpg", "psycopg"})
SCHEMES = SQLITE_SCHEMES | POSTGRES_SCHEMES


@dataclass(frozen=True)
class DatabaseUrl:
    kind: str  # "sqlite" | "postgres"
    path: str  # SQLite file path; "" for PostgreSQL
    mark: str  # DB-API placeholder of the driver (sqlite3 "?", psycopg "%s")
    dsn: str  # PostgreSQL URL for libpq/psycopg (scheme postgresql://); "" for SQLite


def unsupported(scheme: str) -> ValueError:
    return ValueError(f"unsupported database URL (scheme {scheme!r}): use "
                      "sqlite:///path/to/file.db or postgres://user:password@host:port/db")


def parse(url: str) -> DatabaseUrl:
    if not isinstance(url, str):
        raise ValueError("the database URL must be a string")
    if any(ord(c) < 32 or ord(c) == 127 for c in url):  # NUL, newline...: no driver takes them
        raise ValueError("control characters in the database URL")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower() if sep else ""
    if scheme in SQLITE_SCHEMES:
        path = rest.split("?", 1)[0]
        if path:
            return DatabaseUrl("sqlite", path, "?", "")
    elif scheme in POSTGRES_SCHEMES:
        return DatabaseUrl("postgres", "", "%s", "postgresql://" + rest)
    raise unsupported(scheme)


def with_application_name(url: str, name: str) -> str:
    """The URL with PostgreSQL's application_name set to name (an edge box's name,
    so pg_stat_activity says which box holds a connection); SQLite URLs unchanged.
    libpq (psycopg) and Tortoise's asyncpg backend both read it from the query."""
    if not name or parse(url).kind != "postgres":
        return url
    from urllib.parse import parse_qsl, quote, urlencode

    base, _, query = url.partition("?")
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)
              if k != "application_name"]
    params.append(("application_name", name))
    return f"{base}?{urlencode(params, quote_via=quote)}"


def dialect_of(url: str) -> str:
    """The dialect: "sqlite" or "postgres"."""
    return parse(url).kind


def sqlite_path(url: str) -> str:
    """The file of a sqlite:// URL (ValueError for any other)."""
    parsed = parse(url)
    if parsed.kind != "sqlite":
        raise ValueError("not a SQLite database URL: use sqlite:///path/to/file.db")
    return parsed.path
