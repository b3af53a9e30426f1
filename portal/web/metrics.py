"""The portal's Prometheus metrics (issue 17): requests by ROUTE TEMPLATE, method and
status, with their latency, on `[portal] metrics_address`:`metrics_port` (a port
of its own, never the public one; 0 = off).

A raw path never becomes a label: the route is the template Sanic matched
(`/customer/api/usage/<day:str>/sessions`), `(unmatched)` for anything no route
took (404s, probes, fuzzers), and a method outside the HTTP set counts as OTHER,
so the series are bounded by routes x methods x statuses whatever clients send
(tests/portal/test_metrics.py fuzzes it). Per request: one perf_counter in a
request middleware, then one dict lookup and one histogram observe, called from
the portal's own middlewares (portal/web/app.py).
"""

from __future__ import annotations

from time import perf_counter

from prometheus_client import CollectorRegistry, Histogram
from sanic import Request, Sanic
from sanic.response import HTTPResponse

from portal import metrics
from portal.config import Config, ConfigError

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"


def settings(config: Config) -> tuple[str, int]:
    address = str(config.get("portal", "metrics_address") or "127.0.0.1")
    port = int(config.get("portal", "metrics_port") or 0)
    if not 0 <= port <= 65535:
        raise ConfigError(f"[portal] metrics_port: expected 0-65535, got {port}")
    if port and port == int(config.get("portal", "port")):
        raise ConfigError("[portal] metrics_port: must not be the public portal port")
    return address, port


class RequestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "ispedge_portal_request_seconds",
            "Portal requests by route template, method and status: latency in seconds"
            " (its _count is the number of requests)",
            ["route", "method", "status"], buckets=BUCKETS, registry=self.registry)
        self._children: dict[tuple[str | None, str, int], Histogram] = {}

    def started(self, request: Request) -> None:
        request.ctx.metrics_t0 = perf_counter()

    def observed(self, request: Request, response: HTTPResponse) -> None:
        t0 = getattr(request.ctx, "metrics_t0", None)
        if t0 is None:
            return
        route = request.route
        method = request.method
        if method not in METHODS:
            method = "OTHER"
        path = route.path if route is not None else None  # the template (a Route
        key = (path, method, response.status)              # is not hashable)
        child = self._children.get(key)
        if child is None:
            template = UNMATCHED if path is None else "/" + path
            child = self._children[key] = self.requests.labels(template, method,
                                                               str(response.status))
        child.observe(perf_counter() - t0)

    def install(self, app: Sanic) -> None:
        """started/observed as middlewares of their own (bench/metrics_bench.py). The
        portal calls them from its own two middlewares instead (portal/web/app.py):
        Sanic dispatches two signals around every middleware of every request."""

        @app.on_request(priority=1000)
        async def _started(request: Request) -> None:
            self.started(request)

        @app.on_response(priority=-1000)
        async def _observed(request: Request, response: HTTPResponse) -> None:
            self.observed(request, response)

    def serve(self, address: str, port: int) -> bool:
        return metrics.serve(self.registry, address, port, "portal")
