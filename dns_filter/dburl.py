"""The database URL contract shared by the policy reader and the block log."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse


@dataclass(frozen=True)
class DatabaseUrl:
    kind: str  # "sqlite" | "postgres"
    path: str  # SQLite file path; "" for PostgreSQL
    mark: str  # DB-API placeholder of the driver


def parse(url: str) -> DatabaseUrl:
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        # Tortoise style: sqlite:///abs/path.db ("sqlite://" + an absolute path)
        return DatabaseUrl("sqlite", "/" + url[len("sqlite://"):].lstrip("/"), "?")
    if scheme in ("postgres", "postgresql"):
        return DatabaseUrl("postgres", "", "%s")
    raise ValueError(f"unsupported database URL {url!r} (sqlite:///path or postgres://...)")
