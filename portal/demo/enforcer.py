"""The enforcer as a child process of another command (`ispedge demo`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from portal.cli.children import stop_process
from portal.config import Config
from portal.enforcer import local
from portal.enforcer.settings import Settings


class Child:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def stop(self) -> None:
        stop_process(self.process, 15)


def start_child(config: Config, state_dir: Path) -> tuple[Child, str]:
    """Start `ispedge enforcer` on config's database; returns it and ONE line saying
    what it does (the local shaper needs CAP_NET_ADMIN and configured interfaces)."""
    settings = Settings.from_config(config)
    reason = local.unavailable_reason(settings.shaper, settings.down_interface,
                                      settings.up_interface, local.has_net_admin())
    env = dict(os.environ)
    env.update({"ISPEDGE_DATABASE_URL": config.database_url,
                "ISPEDGE_GENERAL_STATE_DIR": str(state_dir)})
    if config.path is not None:
        env["ISPEDGE_CONFIG"] = str(config.path)
    log_path = state_dir / "enforcer.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "portal.main", "enforcer"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # Ctrl-C reaches us, we stop it
    shaping = (f"without the local shaper: {reason}" if reason else
               f"shaping {settings.down_interface}/{settings.up_interface}")
    return Child(process), f"Enforcer: running {shaping}; log {log_path}"
