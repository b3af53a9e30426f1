"""The unauthenticated flood of test_web_abuse, run in its own process: 40 clients in
one asyncio loop cost the measuring client's loop tens of ms per /me if they share it,
which measured the test, not the portal.

Usage: python -m tests.security._flood URL RESELLER_ID SECONDS -> prints a JSON list of
the statuses it got.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

import httpx

HUGE_ID = "9" * 20


def flood_request(rng: random.Random, reseller_id: int) -> tuple[str, str, dict[str, object]]:
    ip = f"198.18.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    kind = rng.randrange(9)
    h: dict[str, object] = {"headers": {"X-Forwarded-For": ip}}
    if kind == 0:
        return "GET", f"/customer/icons/512.png?c={rng.randrange(16**6):06x}", h
    if kind == 1:
        return "GET", f"/customer/icons/192.png?c={rng.randrange(16**6):06x}", h
    if kind == 2:
        logo = rng.choice([str(reseller_id), str(rng.randrange(10**6)), HUGE_ID,
                           "-" + HUGE_ID])
        return "GET", f"/customer/branding/logo/{logo}", h
    if kind == 3:
        return "POST", "/customer/api/login", {**h, "json": {
            "username": f"u{rng.randrange(10**6)}@acme.net", "password": "wrong"}}
    if kind == 4:
        return "POST", "/operator/api/login", {**h, "json": {
            "username": "olga", "password": f"guess{rng.randrange(10**6)}"}}
    if kind == 5:
        return "GET", rng.choice(["/docs", "/docs/openapi.json"]), h
    if kind == 6:
        return "GET", "/customer/manifest.webmanifest", h
    if kind == 7:
        return "GET", rng.choice(["/customer/login", "/customer/api/branding"]), h
    return "GET", "/customer/sw.js", h


async def flood(url: str, reseller_id: int, seconds: float, clients: int = 40) -> list[int]:
    rng = random.Random(15)
    statuses: list[int] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as c:
        async def one() -> None:
            while time.monotonic() < deadline:
                method, path, kwargs = flood_request(rng, reseller_id)
                r = await c.request(method, path, **kwargs)  # type: ignore[arg-type]
                statuses.append(r.status_code)

        await asyncio.gather(*(one() for _ in range(clients)))
    return statuses


if __name__ == "__main__":
    url, reseller, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asyncio.run(flood(url, reseller, secs))))
