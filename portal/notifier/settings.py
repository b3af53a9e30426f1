"""The [notifier] section of the config, checked once at start."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from portal.config import Config, ConfigError

SECURITY = ("starttls", "tls", "none")
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int = 587
    security: str = "starttls"
    user: str = ""
    password: str = ""
    sender: str = ""
    ca_file: str = ""


@dataclass(frozen=True)
class Gateway:
    url: str
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    content_type: str = "application/json"


@dataclass(frozen=True)
class Settings:
    channels: tuple[str, ...] = ("email", "sms", "push")
    expiry_days: tuple[int, ...] = (3, 1)
    poll_s: float = 0.2
    scan_s: float = 60.0
    lease_s: float = 30.0
    batch: int = 50
    send_timeout_s: float = 15.0
    max_attempts: int = 8
    retry_base_s: float = 30.0
    retry_max_s: float = 3600.0
    portal_url: str = ""
    timezone: str = "UTC"
    smtp: Smtp | None = None
    gateway: Gateway | None = None
    vapid_subject: str = "mailto:noc@localhost"
    name: str = field(default_factory=lambda: f"{socket.gethostname()}")

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        s = config.section("notifier")
        try:
            channels = tuple(c for c in _list(s.get("channels", [])))
            bad = set(channels) - {"email", "sms", "push"}
            if bad:
                raise ConfigError(f"notifier.channels: unknown {sorted(bad)[0]!r}")
            days = tuple(sorted({int(d) for d in _list(s.get("expiry_days", []))},
                                reverse=True))
            if any(d <= 0 or d > 60 for d in days):
                raise ConfigError("notifier.expiry_days: whole days from 1 to 60")
            smtp = None
            if s.get("smtp_host"):
                security = str(s.get("smtp_security", "starttls"))
                if security not in SECURITY:
                    raise ConfigError(f"notifier.smtp_security: one of {', '.join(SECURITY)}")
                if not s.get("smtp_from"):
                    raise ConfigError("notifier.smtp_from: the sender address is needed")
                smtp = Smtp(str(s["smtp_host"]), int(s.get("smtp_port", 587)), security,
                            str(s.get("smtp_user", "")), str(s.get("smtp_password", "")),
                            str(s["smtp_from"]), str(s.get("smtp_ca_file", "")))
            gateway = None
            if s.get("sms_url"):
                url = str(s["sms_url"])
                if urlsplit(url).scheme not in ("http", "https"):
                    raise ConfigError("notifier.sms_url: an http or https URL")
                headers = []
                for line in _list(s.get("sms_headers", [])):
                    name, sep, value = line.partition(":")
                    if not sep or not name.strip():
                        raise ConfigError("notifier.sms_headers: 'Name: value' lines")
                    headers.append((name.strip(), value.strip()))
                ctype = str(s.get("sms_content_type", "application/json"))
                if ctype not in CONTENT_TYPES:
                    raise ConfigError(f"notifier.sms_content_type: one of "
                                      f"{', '.join(CONTENT_TYPES)}")
                method = str(s.get("sms_method", "POST")).upper()
                if method not in ("GET", "POST", "PUT"):
                    raise ConfigError("notifier.sms_method: GET, POST or PUT")
                gateway = Gateway(url, method, tuple(headers), str(s.get("sms_body", "")),
                                  ctype)
            portal_url = str(s.get("portal_url") or config.get("portal", "public_url", "")
                             or "")
            settings = cls(
                channels=channels, expiry_days=days,
                poll_s=float(s.get("poll_ms", 200)) / 1000, scan_s=float(s.get("scan_s", 60)),
                lease_s=float(s.get("lease_s", 30)), batch=int(s.get("batch", 50)),
                send_timeout_s=float(s.get("send_timeout_s", 15)),
                max_attempts=int(s.get("max_attempts", 8)),
                retry_base_s=float(s.get("retry_base_s", 30)),
                retry_max_s=float(s.get("retry_max_s", 3600)),
                portal_url=portal_url, timezone=config.timezone, smtp=smtp, gateway=gateway,
                vapid_subject=str(s.get("vapid_subject") or (
                    portal_url if portal_url.startswith("https://") else "mailto:noc@localhost")),
                name=f"{config.box}:{os.getpid()}")
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[notifier]: {exc}") from None
        if settings.lease_s <= 0 or settings.batch <= 0 or settings.max_attempts <= 0:
            raise ConfigError("[notifier]: lease_s, batch and max_attempts must be positive")
        return settings

    def enabled(self, channel: str) -> bool:
        if channel not in self.channels:
            return False
        return {"email": self.smtp is not None, "sms": self.gateway is not None,
                "push": True}[channel]
