"""One TOML configuration file for every ispedge daemon.

Lookup order for the file: the --config argument, $ISPEDGE_CONFIG, ./ispedge.toml,
/etc/ispedge/ispedge.toml; none found means all defaults (the embedded mode).
Any key can be overridden from the environment as ISPEDGE_<SECTION>_<KEY>
(e.g. ISPEDGE_PORTAL_PORT=8080), so containers and tests need no file.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dns_filter import dburl

BOX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SEARCH_PATH = (Path("ispedge.toml"), Path("/etc/ispedge/ispedge.toml"))

DEFAULTS: dict[str, dict[str, Any]] = {
    "general": {
        "state_dir": "/var/lib/ispedge",
        "timezone": "UTC",
        "currency": "USD",
        # This edge box's name (issue 16): the enforcer and resolver heartbeat under it
        # in the boxes table, NASes are assigned to it, and its PostgreSQL connections
        # carry it as application_name. Empty: the machine's hostname.
        "box": "",
    },
    "database": {
        # Empty means "<state_dir>/ispedge.db" (embedded SQLite in WAL mode).
        "url": "",
    },
    "portal": {
        "host": "127.0.0.1",
        "port": 8080,
        "public_url": "",
        # Our own names (a reseller's custom_domain shows its branding). Declared so that
        # ISPEDGE_PORTAL_HOSTNAMES is read as a comma-separated list, not one string.
        "hostnames": [],
        "trusted_proxies": [],
        "token_days": 7,
        "max_body_bytes": 65536,
        "workers": 1,
        # Token signing keys shared by every instance (portal/core/auth/keys.py);
        # empty: <state_dir>/signing.keys, created with mode 0600 on first run.
        "key_file": "",
        # The global API limiter (portal/web/limiter.py), in `limits` notation; counted
        # in each instance's memory. A household of 5 devices polling live every 3 s is
        # 100 requests a minute; a CGNAT address carries many households.
        "rate_limit": True,
        "rate_limit_per_address": "1200/minute",
        "rate_limit_per_subscriber": "300/minute",
        "rate_limit_login_per_address": "60/minute",
        # /docs: the API reference (Redoc, served by the portal) and /docs/openapi.json.
        "docs": True,
        # Prometheus /metrics (portal/web/metrics.py) on an address and port of their
        # own, never the public port; 0 = off.
        "metrics_address": "127.0.0.1",
        "metrics_port": 9154,
        # PostgreSQL connections of this portal's pool (README, "Connections"): a
        # transaction waiting on a row lock holds one, so a busy portal needs several.
        "db_pool_max": 20,
        # The operator console (/operator/): admins must log in with a TOTP code too
        # (`ispedge operator enroll-totp NAME`); an admin without one may only set one
        # up at sign-in (portal/core/auth/login.py, operator_login).
        "require_totp_for_admins": False,
    },
    # Login lockout (portal/core/auth/lockout.py). The tiers on (address, username)
    # are fixed: 5 failures -> 15 min, 10 -> 1 h, 20 -> 24 h.
    "lockout": {
        "address_max_failures": 100,  # one address, any username (a CGNAT address is shared)
        "address_window_minutes": 15,
        "account_max_failures": 10,  # one account, any address: the account is under attack
        "account_window_minutes": 15,
        "account_slowdown_minutes": 15,  # then an address that failed for it waits this long
    },
    "billing": {
        "max_topup_gb": 100,
        "cycle": "renewal",  # or "calendar"
        # Plan changes a subscriber may make per local day (0 = no limit): each
        # change moves money, so repeated round trips are bounded (issue 15).
        "plan_changes_per_day": 3,
    },
    # Usage ingest (portal/usage/ingest.py): radacct -> usage_daily.
    "usage": {
        "interim_seconds": 300,  # the NAS's Acct-Interim-Interval
        "stale_after_missed": 3,  # an open session silent this many interims is closed
        "overlap_seconds": 900,  # re-read this far back for late accounting packets
        "keep_stopped_seconds": 604800,
    },
    # Live Mbps on the Dashboard: "accounting" (interim updates) or "shaper" (live_rates).
    "live": {
        "source": "accounting",
        "stale_after_seconds": 900,
        "max_age_seconds": 15,
    },
    # Data lifecycle (portal/store/retention.py; `ispedge db prune`, and the enforcer
    # every prune_s). Closed radacct sessions older than radacct_days (35 at least) move
    # to their per-session record; the journal is pruned behind the slowest follower
    # seen within follower_timeout_s; 0 days = kept for ever.
    "retention": {
        "radacct_days": 90,
        "session_record_days": 0,
        "audit_days": 365,
        "journal_min_age_s": 3600,
        "follower_timeout_s": 86400,
        "radacct_changes_keep_s": 3600,
        "prune_s": 3600,
    },
    # `ispedge dns`: any dns_filter.settings.DnsSettings field (README, Configuration).
    "dns": {},
    # `ispedge blocklists update` and the Parental tab's category list (BlocklistSettings).
    "blocklists": {"extra_categories": []},
    # The enforcer daemon (portal/enforcer/README.md describes every key).
    "enforcer": {
        "shaper": False,
        "down_interface": "",
        "up_interface": "",
        "netns": "",
        # Subscriber networks this box's local shaper owns (CIDRs): it shapes exactly
        # the sessions whose Framed-IP-Address lies in them. Empty: sessions on no
        # known NAS, and only while this is the only box (portal/enforcer/README.md).
        "shaped_networks": [],
        "heartbeat_s": 5.0,
        "suspended_down_kbps": 256,
        "suspended_up_kbps": 256,
        "expired_action": "suspend",  # or "disconnect"
        "poll_ms": 200,  # journal poll (PostgreSQL: LISTEN/NOTIFY wakes it sooner)
        "journal_batch": 1000,  # journal / accounting change rows read per poll
        "reconcile_s": 60.0,
        "ingest_s": 60.0,  # the full usage ingest (stale sessions too); 0: this box runs none
        # Accounting changes are ingested as they arrive, one pass per burst: the
        # window after a burst's first change (portal/usage/coalesce.py); 0: only
        # every ingest_s.
        "ingest_coalesce_ms": 50,
        "sample_s": 1.0,
        "coa_timeout_s": 1.0,
        "coa_retries": 2,
        "retry_base_s": 1.0,
        "retry_max_s": 60.0,
        # Prometheus /metrics (portal/enforcer/metrics.py); 0 = off.
        "metrics_address": "127.0.0.1",
        "metrics_port": 9155,
        "db_pool_max": 8,  # PostgreSQL connections of its pool, plus one for LISTEN
    },
    # The notifier daemon (portal/notifier/README.md describes every key).
    "notifier": {
        "channels": ["email", "sms", "push"],  # the ones configured below are used
        "expiry_days": [3, 1],  # reminders this many days before the plan expires
        "poll_ms": 200,  # journal and outbox poll (PostgreSQL: NOTIFY wakes it sooner)
        "scan_s": 60.0,  # how often expiry dates are looked at
        "lease_s": 30.0,  # a claimed row held by a notifier that died is taken back after
        "batch": 50,
        "send_timeout_s": 15.0,
        "max_attempts": 8,
        "retry_base_s": 30.0,
        "retry_max_s": 3600.0,
        "portal_url": "",  # empty: [portal] public_url
        "smtp_host": "",
        "smtp_port": 587,
        "smtp_security": "starttls",  # or "tls" (implicit, port 465) or "none"
        "smtp_user": "",
        "smtp_password": "",
        "smtp_from": "",
        "smtp_ca_file": "",  # empty: the system's trust store
        "sms_url": "",  # the gateway; {{ to }} and {{ text }} in it are URL-encoded
        "sms_method": "POST",
        "sms_headers": [],  # "Name: value" lines (an API key)
        "sms_body": "",  # template; values JSON- or form-encoded by sms_content_type
        "sms_content_type": "application/json",  # or application/x-www-form-urlencoded
        "vapid_subject": "",  # mailto: or https: contact for push services; empty: portal URL
    },
}


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Config:
    raw: dict[str, dict[str, Any]]
    path: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def get(self, section: str, key: str, default: Any = None) -> Any:
        return self.raw.get(section, {}).get(key, default)

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.raw.get(name, {}))

    @property
    def state_dir(self) -> Path:
        return Path(self.get("general", "state_dir"))

    @property
    def database_url(self) -> str:
        url = self.get("database", "url")
        return url or f"sqlite://{(self.state_dir / 'ispedge.db').resolve()}"

    @property
    def box(self) -> str:
        """This edge box's name: [general] box, or the hostname."""
        name = str(self.get("general", "box") or "").strip() or socket.gethostname()
        if not BOX_NAME.fullmatch(name):
            raise ConfigError(f"general.box: {name!r} is not a box name (1-64 of A-Z a-z "
                              f"0-9 . _ -)")
        return name

    @property
    def timezone(self) -> str:
        return str(self.get("general", "timezone"))


def _coerce(value: str, like: Any) -> Any:
    """Env values are strings; give them the type of the default they replace."""
    if isinstance(like, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"expected a boolean, got {value!r}")
    if isinstance(like, int):
        try:
            return int(value)
        except ValueError as exc:
            raise ConfigError(f"expected an integer, got {value!r}") from exc
    if isinstance(like, float):
        return float(value)
    if isinstance(like, list):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def find_config_file(explicit: str | None, environ: dict[str, str] | None = None) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    env = (os.environ if environ is None else environ).get("ISPEDGE_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"ISPEDGE_CONFIG points to a missing file: {path}")
        return path
    return next((p for p in SEARCH_PATH if p.is_file()), None)


def load_config(explicit: str | None = None, environ: dict[str, str] | None = None) -> Config:
    environ = dict(os.environ if environ is None else environ)
    path = find_config_file(explicit, environ)
    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in DEFAULTS.items()}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        for table, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: [{table}] must be a table")
            merged.setdefault(table, {}).update(values)
    prefix = "ISPEDGE_"
    for name, value in environ.items():
        if not name.startswith(prefix) or name == "ISPEDGE_CONFIG":
            continue
        rest = name[len(prefix):].lower()
        section = next((s for s in merged if rest.startswith(s + "_")), None)
        if section is None:
            continue
        key = rest[len(section) + 1:]
        like = merged[section].get(key, "")
        try:
            merged[section][key] = _coerce(value, like)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from exc
    _check_types(merged, path)
    config = Config(raw=merged, path=path)
    try:
        dburl.parse(config.database_url)  # the one URL contract; the message hides the URL
    except ValueError as exc:
        raise ConfigError(f"[database] url: {exc}") from None
    return config


def _check_types(merged: dict[str, dict[str, Any]], path: Path | None) -> None:
    """A file value has the type of the default it replaces (as an environment value is
    coerced to it), so a daemon never meets `port = "abc"` halfway through its start."""
    where = f"{path}: " if path else ""
    for section, defaults in DEFAULTS.items():
        for key, default in defaults.items():
            value = merged[section].get(key, default)
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            else:
                ok = isinstance(value, type(default))
            if not ok:
                raise ConfigError(f"{where}[{section}] {key}: expected "
                                  f"{type(default).__name__}, got {value!r}"[:200])
            if isinstance(value, str) and any(ord(c) < 32 for c in value):
                raise ConfigError(f"{where}[{section}] {key}: control characters in a value")

