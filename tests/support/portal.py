"""Run the real portal (`ispedge portal`) as a subprocess on a free loopback port.

Portals and `ispedge` runs go through tests/support/forkserver.py: the same
`python -m portal.main ARGS`, forked from a process that has already imported it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support import forkserver
from tests.support.ports import free_port as free_port  # re-exported for tests


def ispedge_cli(db_url: str, state_dir: Path) -> Callable[..., str]:
    """`ispedge ARGS...` as an operator runs it (a subprocess); returns its stdout,
    asserting it exited 0."""
    env = portal_env(db_url, state_dir)

    def run(*args: str) -> str:
        proc = forkserver.run(list(args), env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return run


@dataclass
class PortalServer:
    url: str
    db_url: str
    state_dir: Path
    process: subprocess.Popen[bytes] | forkserver.ForkedProcess
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)  # type: ignore[arg-type]

    def login(self, username: str, password: str, ip: str | None = None) -> str:
        headers = {"X-Forwarded-For": ip} if ip else {}
        with self.client() as c:
            r = c.post("/customer/api/login", json={"username": username, "password": password},
                       headers=headers)
        assert r.status_code == 200, r.text
        return str(r.json()["token"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        # portal.cli.children.stop_process, for a Popen or a ForkedProcess alike
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def portal_env(db_url: str, state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISPEDGE_")}
    env.update({
        "ISPEDGE_DATABASE_URL": db_url,
        "ISPEDGE_GENERAL_STATE_DIR": str(state_dir),
        # Tests reach the portal through loopback and may set X-Forwarded-For.
        "ISPEDGE_PORTAL_TRUSTED_PROXIES": "127.0.0.1/32",
        # Many portals and enforcers run at once: none binds the default metrics
        # ports (tests/portal/test_metrics.py gives its own a free one).
        "ISPEDGE_PORTAL_METRICS_PORT": "0",
        "ISPEDGE_ENFORCER_METRICS_PORT": "0",
        **extra,
    })
    return env


def start_portal(db_url: str, state_dir: Path, **extra_env: str) -> PortalServer:
    state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = state_dir / "portal.log"
    env = portal_env(db_url, state_dir, **extra_env)
    log_path.write_bytes(b"")
    proc = forkserver.popen(["portal", "--host", "127.0.0.1", "--port", str(port)], env,
                            log_path)
    url = f"http://127.0.0.1:{port}"
    server = PortalServer(url, db_url, state_dir, proc, log_path, env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"portal exited with {proc.returncode}:\n{server.log()}")
        try:
            # Any answer means it is listening; a broken branding lookup fails the test
            # that needs it, with the server's own error, instead of a start timeout.
            httpx.get(url + "/customer/api/branding", timeout=1)
            return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"portal did not start within 30 s:\n{server.log()}")
