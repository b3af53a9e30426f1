"""Serving a daemon's Prometheus registry on a /metrics port of its own (the portal's
`[portal] metrics_*`, the enforcer's `[enforcer] metrics_*`; the resolver has its own
in dns_filter/metrics.py, which never imports portal). A leaf: it imports no layer.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, start_http_server


def serve(registry: CollectorRegistry, address: str, port: int, daemon: str) -> bool:
    """Start the /metrics HTTP server (a thread) for `registry`. False when it is off
    (port 0) or the port is taken: logged, and the daemon runs on without metrics
    rather than not at all."""
    log = logging.getLogger(f"ispedge.{daemon}")
    if port <= 0:
        return False
    try:
        start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        log.warning("%s metrics: cannot listen on %s:%d (%s); no metrics", daemon, address,
                    port, exc)
        return False
    log.info("%s metrics on http://%s:%d/metrics", daemon, address, port)
    return True
