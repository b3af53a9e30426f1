"""Helpers of the login/token attack tests (issue 15): guesses sent concurrently."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from portal.store import db
from tests.support import seed
from tests.support.portal import PortalServer

USER, PASSWORD = "alice@x.net", "alice-password"
OPERATOR, OPERATOR_PASSWORD = "olga", "olga-password-1"


async def people() -> None:
    from portal.core import operators

    await seed.reseller_with_plans()
    await seed.subscriber(USER, PASSWORD)
    await operators.add(OPERATOR, OPERATOR_PASSWORD)


async def guess(client: httpx.AsyncClient, ip: str, password: str, username: str = USER,
                path: str = "/customer/api/login") -> httpx.Response:
    return await client.post(path, json={"username": username, "password": password},
                             headers={"X-Forwarded-For": ip})


async def burst(servers: list[PortalServer], guesses: list[tuple[str, str]],
                username: str = USER, path: str = "/customer/api/login"
                ) -> list[httpx.Response]:
    """Every (ip, password) guess at once, spread round-robin over the portals."""
    limits = httpx.Limits(max_connections=200)
    clients = [httpx.AsyncClient(base_url=s.url, timeout=60, limits=limits) for s in servers]
    try:
        return list(await asyncio.gather(*(
            guess(clients[i % len(clients)], ip, pw, username, path)
            for i, (ip, pw) in enumerate(guesses))))
    finally:
        for c in clients:
            await c.aclose()


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


async def failure_rows(ip: str | None = None, username: str | None = None) -> int:
    sql, params = "SELECT COUNT(*) AS n FROM login_failures WHERE 1 = 1", []
    if ip is not None:
        sql += " AND ip = ?"
        params.append(ip)
    if username is not None:
        sql += " AND username = ?"
        params.append(username)
    return int((await db.fetch(sql, params))[0]["n"])


class hold_write_lock:  # noqa: N801 (an async context manager, used like a function)
    """Hold the database's write lock on login_failures from outside the portal."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> None:
        if self.url.startswith("sqlite"):
            import sqlite3

            from portal.store.db import sqlite_path

            self.conn = sqlite3.connect(sqlite_path(self.url), isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            self.pg = psycopg.connect(self.url.replace("postgres://", "postgresql://", 1))
            self.pg.execute("LOCK TABLE login_failures IN ACCESS EXCLUSIVE MODE")

    async def __aexit__(self, *exc: object) -> None:
        if self.url.startswith("sqlite"):
            self.conn.rollback()
            self.conn.close()
        else:
            self.pg.rollback()
            self.pg.close()
