"""Issue 15: an OpenAPI-driven fuzz run (schemathesis) over every customer and operator
route of a real portal process, with a valid customer token, a valid operator token,
an invalid token and none: no response is a 5xx, and every route answers at least once
with something other than 429. And: every registered /customer/api and /operator/api
route is in the OpenAPI document, with its body schema when its handler reads a body.

Run time on the 2-core VM: see EXAMPLES below (the test prints its own figures).
"""

from __future__ import annotations

import inspect
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tests.support.portal import PortalServer, ispedge_cli, start_portal

API_PREFIXES = ("/customer/api", "/operator/api")
PASSWORD = "fuzz-pass-123456"
# Examples per (operation, token, generation mode): ~1,900 requests in all.
EXAMPLES = {"customer": 12, "operator": 8, "invalid": 3, "none": 3}

# The portal's config for the run. Every limiter is raised so that the fuzz measures
# input handling, not throttling: add the global API limiter's keys here as
# ISPEDGE_PORTAL_<KEY> (e.g. its per-address and per-subscriber rates).
FUZZ_PORTAL_ENV: dict[str, str] = {
    "ISPEDGE_BILLING_MAX_TOPUP_GB": "100",
    # The limiter raised, not off: it still runs on every request of the fuzz.
    "ISPEDGE_PORTAL_RATE_LIMIT_PER_ADDRESS": "1000000/minute",
    "ISPEDGE_PORTAL_RATE_LIMIT_PER_SUBSCRIBER": "1000000/minute",
    "ISPEDGE_PORTAL_RATE_LIMIT_LOGIN_PER_ADDRESS": "1000000/minute",
}


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalServer]:
    state = tmp_path_factory.mktemp("fuzz")
    db_url = f"sqlite://{state / 'ispedge.db'}"
    cli = ispedge_cli(db_url, state)
    cli("db", "upgrade")
    cli("reseller", "add", "acme")
    cli("reseller", "set", "acme", "--parental", "yes", "--allow-plan-change", "yes",
        "--price-per-gb", "1.50")
    cli("plan", "add", "basic", "--reseller", "acme", "--down", "10000", "--up", "5000",
        "--price", "20.00")
    cli("plan", "add", "fast", "--reseller", "acme", "--down", "50000", "--up", "20000",
        "--price", "40.00")
    cli("subscriber", "add", "ann", "--password", PASSWORD, "--reseller", "acme",
        "--plan", "basic")
    cli("subscriber", "credit", "ann", "500.00")
    cli("operator", "add", "op1", "--password", PASSWORD)
    server = start_portal(db_url, state, **FUZZ_PORTAL_ENV)
    try:
        yield server
    finally:
        server.stop()


def _operator_token(portal: PortalServer) -> str:
    with portal.client() as c:
        r = c.post("/operator/api/login", json={"username": "op1", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _openapi_path(sanic_path: str) -> str:
    path = "/" + sanic_path.lstrip("/")
    return re.sub(r"<(\w+)(?::[^>]*)?>", r"{\1}", path)


def test_every_api_route_is_documented_with_its_body(portal: PortalServer) -> None:
    from portal.config import load_config
    from portal.web.app import create_app

    doc = httpx.get(portal.url + "/docs/openapi.json", timeout=10).json()
    app = create_app(load_config(environ=portal.env))
    missing, no_body, no_security = [], [], []
    checked = 0
    for route in app.router.routes:
        path = _openapi_path(route.path)
        if not path.startswith(API_PREFIXES):
            continue
        source = inspect.getsource(inspect.unwrap(route.handler))
        for method in route.methods:
            if method in ("HEAD", "OPTIONS"):
                continue
            checked += 1
            op = doc["paths"].get(path, {}).get(method.lower())
            if op is None:
                missing.append(f"{method} {path}")
                continue
            if ("json_body(" in source or "credentials(" in source) and \
                    "schema" not in op.get("requestBody", {}).get("content", {}).get(
                        "application/json", {}):
                no_body.append(f"{method} {path}")
            if not path.endswith("/login") and "branding" not in path and \
                    not op.get("security"):
                no_security.append(f"{method} {path}")
    assert checked >= 25
    assert not missing, f"routes missing from the OpenAPI document: {missing}"
    assert not no_body, f"routes whose JSON body has no schema in the document: {no_body}"
    assert not no_security, f"token-protected routes not marked secured: {no_security}"


def test_fuzz_every_api_route(portal: PortalServer) -> None:
    schema = schemathesis.openapi.from_url(portal.url + "/docs/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if op.path.startswith(API_PREFIXES)]
    # Logging out revokes the token every later call uses: fuzz logouts last.
    operations.sort(key=lambda op: op.path.endswith("/logout"))
    assert len(operations) >= 25
    customer = portal.login("ann", PASSWORD)
    tokens = {"customer": customer, "operator": _operator_token(portal),
              "invalid": customer[:-4] + "AAAA", "none": None}
    session = requests.Session()
    statuses: dict[str, set[int]] = defaultdict(set)
    server_errors: list[str] = []
    started, sent = time.monotonic(), 0

    def run(op: Any, mode: GenerationMode, token: str | None, examples: int) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}

        @settings(max_examples=examples, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            nonlocal sent
            response = case.call(base_url=portal.url, session=session, headers=headers,
                                 timeout=15)
            sent += 1
            statuses[op.label].add(response.status_code)
            if response.status_code >= 500:
                server_errors.append(f"{response.status_code} {op.label} [{mode.value}] "
                                     f"{case.as_curl_command()[:400]} -> "
                                     f"{response.text[:200]}")

        try:
            fuzz()
        except Unsatisfiable:  # nothing to make negative (an operation without inputs)
            assert mode is GenerationMode.NEGATIVE, op.label

    for op in operations:
        for who, token in tokens.items():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run(op, mode, token, EXAMPLES[who])
    took = time.monotonic() - started
    print(f"\nfuzz: {len(operations)} operations, {sent} requests, {took:.1f} s, "
          f"{len(server_errors)} responses >= 500")
    assert not server_errors, f"{len(server_errors)} responses >= 500:\n" + \
        "\n".join(server_errors[:40])
    only_429 = [label for label in (op.label for op in operations)
                if statuses[label] and statuses[label] <= {429}]
    unanswered = [op.label for op in operations if not statuses[op.label]]
    assert not unanswered, f"never called: {unanswered}"
    assert not only_429, f"routes that only ever answered 429: {only_429}"
