"""`ispedge dns` (the filtering resolver) and `ispedge blocklists update`.

Both mechanisms take plain settings; this module fills them from the [dns] and
[blocklists] config sections, with the paths and the database defaulting to
the portal's own (general.state_dir, database.url).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
import types
import typing
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from blocklists.settings import BlocklistSettings
from dns_filter.settings import DnsSettings
from portal.cli.children import stop_process
from portal.cli.registry import command
from portal.config import Config, ConfigError


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Environment overrides arrive as strings: give them the field's type."""
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    try:
        if hint is bool:
            return value.lower() in ("1", "true", "yes", "on")
        if hint is int:
            return int(value)
        if hint is float:
            return float(value)
        if origin is list:
            return [v.strip() for v in value.split(",") if v.strip()]
        if origin is dict:
            return json.loads(value)
        if origin in (types.UnionType, typing.Union) and int in args:  # workers: int | "auto"
            return value if value == "auto" else int(value)
    except ValueError as exc:
        raise ConfigError(f"[{name}]: bad value {value!r}: {exc}") from None
    return value


def _typed(cls: type, section: str, raw: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"[{section}]: unknown keys {sorted(unknown)}")
    return {k: _coerce(section, v, hints[k]) for k, v in raw.items()}


def _unset_empty(raw: dict[str, Any]) -> dict[str, Any]:
    """`blocklist_dir = ""` in the file means "the default", as `[database] url` does."""
    paths = ("database_url", "state_dir", "blocklist_dir")
    return {k: v for k, v in raw.items() if not (k in paths and v == "")}


def blocklist_settings(config: Config) -> BlocklistSettings:
    raw = _typed(BlocklistSettings, "blocklists", _unset_empty(config.section("blocklists")))
    raw.setdefault("blocklist_dir", str(config.state_dir / "blocklists"))
    try:
        return BlocklistSettings.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[blocklists]: {exc}") from None


def dns_settings(config: Config) -> DnsSettings:
    raw = _typed(DnsSettings, "dns", _unset_empty(config.section("dns")))
    raw.setdefault("database_url", config.database_url)
    raw.setdefault("state_dir", str(config.state_dir / "dns"))
    raw.setdefault("blocklist_dir", str(blocklist_settings(config).blocklist_dir))
    raw.setdefault("box", config.box)
    try:
        return DnsSettings.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[dns]: {exc}") from None


@command("dns")
async def dns_run(args: argparse.Namespace, config: Config) -> int:
    from dns_filter.server import run

    settings = dns_settings(config)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Twisted owns this process from here (its reactor, its signal handlers); the
    # asyncio loop that called us stays idle until the resolver stops.
    run(settings)
    return 0


@command("blocklists update")
async def blocklists_update(args: argparse.Namespace, config: Config) -> int:
    """Exit 0: every source fine; 1: a source failed or was rejected (its last good
    copy was used); 2: the build failed (the previous generation stays)."""
    from blocklists.update import update

    settings = blocklist_settings(config)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        report = update(settings)
    except OSError as exc:  # the directory itself is unusable: nothing could be built
        print(f"ispedge: blocklists: build failed: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(asdict(report), indent=1, default=str))
    else:
        print(f"generation {report.generation or '-'}"
              f" ({'new' if report.changed else 'unchanged'}):"
              f" {', '.join(f'{c} {n}' for c, n in sorted(report.counts.items()))}")
        for s in report.sources:
            if s.status in ("rejected", "failed"):
                print(f"  {s.category}: {s.source}: {s.status}: {s.error}")
        if report.error:
            print(f"build failed: {report.error}")
    if report.error:
        return 2
    return 0 if report.ok else 1


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub.add_parser("dns", help="run the per-subscriber filtering DNS resolver ([dns] config)")
    g = sub.add_parser("blocklists", help="category blocklists").add_subparsers(
        dest="action", required=True)
    a = g.add_parser("update", help="fetch sources, build and publish a new generation "
                                    "(exit 0 ok, 1 a source failed, 2 build failed)")
    a.add_argument("--json", action="store_true", help="print the full report as JSON")


# --- the resolver as a child of another command (`ispedge demo`) ---------------------------

class Child:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def stop(self) -> None:
        stop_process(self.process, 10)


def start_child(settings: DnsSettings, log_path: Path, ready_timeout_s: float = 20.0
                ) -> tuple[Child, bool]:
    """`python -m dns_filter` with these settings; (child, came up ready)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    cfg = settings.state_dir / "demo-settings.json"
    cfg.write_text(json.dumps(settings.to_dict()))
    with log_path.open("ab") as log:
        start = log_path.stat().st_size
        process = subprocess.Popen([sys.executable, "-m", "dns_filter", "--config-json",
                                    str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        with log_path.open("rb") as f:
            f.seek(start)
            if b"READY" in f.read():
                return Child(process, log_path), True
        time.sleep(0.1)
    return Child(process, log_path), False


def free_dns_port(preferred: int = 5353) -> int:
    """`preferred` or the next port free for both UDP and TCP on 127.0.0.1."""
    import socket

    for port in [*range(preferred, preferred + 50), 0]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return int(port)
    raise OSError("no free port for the demo resolver")


def demo_settings(config: Config, state_dir: Path) -> DnsSettings:
    """The demo resolver: on a free loopback port, serving 127.0.0.0/8 (the demo
    sessions' framed IPs are 127.1.x.y). Everything else is the [dns] config,
    rate limiting included (default 200 queries/s, burst 400, per source): the
    demo runs the resolver as a box would, so a flood from one demo home is
    dropped while the others are answered."""
    base = dns_settings(config)
    overrides: dict[str, Any] = {
        "listen_address": "127.0.0.1", "listen_port": free_dns_port(),
        "served_networks": ["127.0.0.0/8"], "metrics_port": 0, "workers": 1,
        "state_dir": str(state_dir / "dns"),
    }
    return DnsSettings.from_dict({**base.to_dict(), **overrides})


def start_demo(config: Config, state_dir: Path, example: Any) -> tuple[Child | None, str]:
    """Start the demo resolver (`demo_settings`). Blocked names are answered locally,
    so the printed dig works offline; other names go to the configured upstreams."""
    settings = demo_settings(config, state_dir)
    log_path = state_dir / "dns.log"
    child, ready = start_child(settings, log_path)
    if not ready:
        return child, f"DNS:     resolver did not start; see {log_path}"
    port = settings.listen_port
    if example is None:
        return child, (f"DNS:     dig @127.0.0.1 -p {port} example.com  (no demo session is "
                       f"open right now); log {log_path}")
    return child, (f"DNS:     dig @127.0.0.1 -p {port} -b {example.address} {example.name}"
                   f"  -> NXDOMAIN: {example.username} blocks adult+gambling; log {log_path}")
