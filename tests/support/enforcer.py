"""Run the real enforcer (`python -m portal.main enforcer`) as a subprocess, config from env."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support import forkserver
from tests.support.portal import portal_env


@dataclass
class EnforcerProcess:
    process: subprocess.Popen[bytes] | forkserver.ForkedProcess
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_enforcer(db_url: str, state_dir: Path, name: str = "enforcer",
                   **settings: str) -> EnforcerProcess:
    """settings: [enforcer] keys (poll_ms="100", shaper="true", ...)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    env = portal_env(db_url, state_dir, **{f"ISPEDGE_ENFORCER_{k.upper()}": v
                                           for k, v in settings.items()})
    log_path = state_dir / f"{name}.log"
    proc = forkserver.popen(["enforcer"], env, log_path)
    return EnforcerProcess(proc, log_path)


def wait_for(check: Callable[[], object], timeout_s: float = 10.0, every_s: float = 0.02,
             what: str = "condition", log: Callable[[], str] | None = None) -> float:
    """Poll until check() is truthy; returns the seconds it took."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            extra = ("\n" + log()[-3000:]) if log else ""
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}{extra}")
        time.sleep(every_s)
