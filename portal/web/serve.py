"""Running the portal server."""

from __future__ import annotations

import logging

from portal.config import Config
from portal.web.app import create_app


def serve(config: Config, host: str | None = None, port: int | None = None,
          on_ready: str | None = None) -> None:
    # Sanic configures its own loggers; only ours needs a handler.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger("ispedge").addHandler(handler)
    logging.getLogger("ispedge").setLevel(logging.INFO)
    app = create_app(config)
    if on_ready:
        @app.after_server_start
        async def _announce(app: object) -> None:
            print(on_ready, flush=True)

    app.run(
        host=host or config.get("portal", "host"),
        port=port or int(config.get("portal", "port")),
        single_process=True,
        access_log=False,
        motd=False,
    )
