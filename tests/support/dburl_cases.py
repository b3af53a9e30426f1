"""Database URLs for the URL contract (dns_filter.dburl): what the portal and the
resolver both accept, and what both refuse with the same message."""

from __future__ import annotations

# url, dialect, SQLite path ("" for PostgreSQL), libpq URL ("" for SQLite)
ACCEPTED = [
    ("sqlite:///var/lib/ispedge/ispedge.db", "sqlite", "/var/lib/ispedge/ispedge.db", ""),
    ("sqlite:///tmp/x.db?mode=ro", "sqlite", "/tmp/x.db", ""),
    ("sqlite://state/ispedge.db", "sqlite", "state/ispedge.db", ""),  # relative, Tortoise style
    ("SQLite:///tmp/x.db", "sqlite", "/tmp/x.db", ""),
    ("postgres://ispedge:s3cret@db:5432/ispedge", "postgres", "",
     "postgresql://ispedge:s3cret@db:5432/ispedge"),
    ("postgresql://u@db/ispedge?sslmode=require", "postgres", "",
     "postgresql://u@db/ispedge?sslmode=require"),
    ("asyncpg://u@db/ispedge", "postgres", "", "postgresql://u@db/ispedge"),
    ("psycopg://u@[::1]:5433/ispedge", "postgres", "", "postgresql://u@[::1]:5433/ispedge"),
]

REJECTED = [
    "",
    "/var/lib/ispedge/ispedge.db",
    "ispedge.db",
    "sqlite://",
    "sqlite://?mode=ro",
    "sqlite:/var/lib/ispedge.db",
    "postgres:u@db/ispedge",
    "postgresql+asyncpg://u@db/ispedge",
    "mysql://root:s3cret@db/ispedge",
    "http://db/ispedge",
]
