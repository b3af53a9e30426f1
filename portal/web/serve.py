"""Running the portal server."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from portal.config import Config, ConfigError
from portal.web.app import create_app


def check_listen(host: str, port: int) -> None:
    """Refuse an address the socket layer would only refuse with a traceback."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"[portal] port: expected 0-65535, got {port}")
    try:
        ok = 0 < len(host) <= 253 and host.isprintable() and bool(host.encode("idna"))
    except UnicodeError:
        ok = False
    if not ok:
        raise ConfigError(f"[portal] host: not a host name or address: {ascii(host)[:60]}")


def serve(config: Config, host: str | None = None, port: int | None = None,
          on_ready: str | None = None,
          problems: Callable[[], Awaitable[list[dict[str, object]]]] | None = None) -> None:
    """problems: the enforcement problems the operator console shows (the CLI's
    `enforcer status --problems`; the web layer cannot import the enforcer)."""
    # Sanic configures its own loggers; only ours needs a handler.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger("ispedge").addHandler(handler)
    logging.getLogger("ispedge").setLevel(logging.INFO)
    host = str(config.get("portal", "host")) if host is None else host
    port = port or int(config.get("portal", "port"))
    check_listen(host, port)
    app = create_app(config)
    app.ctx.problems = problems
    if on_ready:
        @app.after_server_start
        async def _announce(app: object) -> None:
            print(on_ready, flush=True)

    app.run(
        host=host,
        port=port,
        single_process=True,
        access_log=False,
        motd=False,
    )
