"""WiFi tab rules: which ACS, validation, the rate limit, audit. Plain async functions.

Nothing reaches the router before the input is valid and the subscriber is under
the rate limit; every attempt that reaches the ACS is a wifi_tasks row (the rate
limit's memory, in the database) and an audit row. The passphrase is never stored,
logged or audited: only "passphrase_changed".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from tortoise.backends.base.client import BaseDBAsyncClient

from portal import i18n
from portal.core.wifi import messages
from portal.core.wifi.acs import AcsClient, AcsError, AcsUnavailable, Device, Match, TaskResult
from portal.core.wifi.genieacs import GenieAcsClient
from portal.errors import Forbidden, NotFound, PortalError, TooManyRequests
from portal.store import journal
from portal.store.models import AcsServer, Reseller, Subscriber, WifiTask
from portal.store.tx import transaction

CHANGES_PER_HOUR = 10
WINDOW = timedelta(hours=1)
BANDS = ("2.4", "5")
MATCHES = ("tag", "username")
AUDIT_ACTIONS = {"wifi": "wifi.change", "reboot": "wifi.reboot"}


# --- validation (plain) ---------------------------------------------------------------

def check_ssid(ssid: object) -> str:
    if not isinstance(ssid, str) or not ssid:
        raise PortalError("invalid_ssid", "the network name (SSID) cannot be empty", 422)
    if not ssid.strip():
        # a name of only spaces shows as blank in every phone's list (issue 18)
        raise PortalError("invalid_ssid", "the network name (SSID) cannot be only spaces", 422)
    if len(ssid.encode()) > 32:
        raise PortalError("invalid_ssid", "the network name (SSID) can be at most 32 bytes "
                          "(fewer characters if you use accents or emoji)", 422)
    if any(ord(c) < 32 or ord(c) == 127 for c in ssid):
        raise PortalError("invalid_ssid", "the network name (SSID) cannot contain control "
                          "characters", 422)
    return ssid


def check_passphrase(passphrase: object) -> str:
    if not isinstance(passphrase, str) or not 8 <= len(passphrase) <= 63 \
            or not all(32 <= ord(c) <= 126 for c in passphrase):
        raise PortalError("invalid_passphrase", "the WiFi password must be 8 to 63 characters: "
                          "letters, digits, spaces and symbols (no accents or emoji)", 422)
    return passphrase


def check_band(band: object) -> str:
    if band not in BANDS:
        raise PortalError("invalid_band", "band must be 2.4 or 5 (GHz)", 422)
    return band


# --- which ACS ---------------------------------------------------------------------------

def client_of(server: AcsServer) -> AcsClient:
    if server.kind == "genieacs":
        return GenieAcsClient(server.url, server.username, server.password,
                              timeout_s=server.timeout_ms / 1000)
    raise PortalError("acs_kind", f"unsupported ACS kind {server.kind!r}", 500)


async def acs_of(sub: Subscriber) -> AcsServer:
    reseller = await sub.reseller
    server = await AcsServer.get_or_none(id=reseller.acs_id) if reseller.acs_id else None
    if server is None:
        raise Forbidden("feature_disabled", "WiFi management is not available for your account")
    return server


def _valid_url(url: str) -> bool:
    """http(s)://host[:port][/path], no whitespace or control characters, a real port."""
    if len(url) > 2000 or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:  # "http://[::1" or a port out of range
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


async def configure(reseller_name: str, url: str, username: str = "", password: str = "",
                    match: str = "tag", timeout_ms: int = 10000) -> AcsServer:
    """Set (or replace) a reseller's ACS. Operator action (CLI)."""
    from portal.core.subscribers import get_reseller

    reseller = await get_reseller(reseller_name)
    if not _valid_url(url):
        raise PortalError("invalid_url", "ACS URL must be http(s)://host[:port]")
    if match not in MATCHES:
        raise PortalError("invalid_match", "match must be tag or username")
    if not 100 <= timeout_ms <= 120000:
        raise PortalError("invalid_timeout", "timeout must be 100 to 120000 ms")

    async def write(tx: BaseDBAsyncClient) -> AcsServer:
        server = await AcsServer.get_or_none(id=reseller.acs_id, using_db=tx) \
            if reseller.acs_id else None
        values = {"url": url, "username": username, "password": password, "match": match,
                  "timeout_ms": timeout_ms}
        if server is None:
            server = await AcsServer.create(kind="genieacs", **values, using_db=tx)
            await Reseller.filter(id=reseller.id).using_db(tx).update(acs_id=server.id)
        else:
            await AcsServer.filter(id=server.id).using_db(tx).update(**values)
        await journal.audit(tx, "operator:cli", "reseller.acs", None, reseller=reseller.name,
                            url=url, match=match)
        return server

    server = await transaction(write)
    return await AcsServer.get(id=server.id)


async def unconfigure(reseller_name: str) -> None:
    from portal.core.subscribers import get_reseller

    reseller = await get_reseller(reseller_name)

    async def write(tx: BaseDBAsyncClient) -> None:
        await Reseller.filter(id=reseller.id).using_db(tx).update(acs_id=None)
        await journal.audit(tx, "operator:cli", "reseller.acs_removed", None,
                            reseller=reseller.name)

    await transaction(write)


# --- reading ---------------------------------------------------------------------------

def _unavailable(exc: Exception) -> PortalError:
    return PortalError("acs_unavailable", f"{exc}; please try again in a few minutes", 503)


async def find_device(sub: Subscriber, server: AcsServer, client: AcsClient) -> Device:
    try:
        device = await client.find_device(sub.username, cast(Match, server.match))
    except AcsUnavailable as exc:
        raise _unavailable(exc) from None
    except AcsError as exc:
        raise PortalError("acs_error", str(exc), 502) from None
    if device is None:
        raise NotFound("no_router", "we could not find your router; if it is new, it may take "
                       "a few minutes to appear, otherwise please contact support")
    return device


def device_json(device: Device) -> dict[str, Any]:
    return {
        "manufacturer": device.manufacturer, "model": device.model, "serial": device.serial,
        "last_contact": device.last_contact.isoformat() if device.last_contact else None,
        "data_model": device.data_model,
        "networks": [{"band": n.band, "ssid": n.ssid,
                      "passphrase_settable": n.passphrase_path is not None}
                     for n in device.networks],
    }


def task_json(task: WifiTask, language: str = i18n.DEFAULT) -> dict[str, Any]:
    """`message` in English as stored; `message_code` (stable) and `message_text`, the
    message in `language`."""
    return {"id": task.id, "action": task.action, "band": task.band, "detail": task.detail,
            "status": task.status, "offline": task.offline, "message": task.message,
            "message_code": task.message_code,
            "message_text": messages.text(task.message_code, task.message_params,
                                          task.message, task.status, task.offline, language),
            "created_at": task.created_at.isoformat()}


def _said(task: WifiTask, message: str, code: str, params: dict[str, str] | None = None) -> None:
    task.message, task.message_code = message[:500], code
    task.message_params = json.dumps(params or {}, ensure_ascii=False)


async def overview(sub: Subscriber, language: str = i18n.DEFAULT) -> dict[str, Any]:
    server = await acs_of(sub)
    device = await find_device(sub, server, client_of(server))
    tasks = await WifiTask.filter(subscriber_id=sub.id).order_by("-id").limit(5)
    return {"device": device_json(device), "tasks": [task_json(t, language) for t in tasks],
            "changes_per_hour": CHANGES_PER_HOUR}


# --- acting --------------------------------------------------------------------------------

async def _reserve(sub: Subscriber, device: Device, action: str, band: str | None,
                   detail: str, now: datetime) -> WifiTask:
    """Take one of the subscriber's changes for this hour, or refuse (429).

    One transaction that first locks the subscriber's row (PostgreSQL) and writes
    (SQLite takes its write lock), then counts: concurrent requests of one
    subscriber queue up, so they can never both take the last slot.
    """
    since = now - WINDOW

    async def write(tx: BaseDBAsyncClient) -> WifiTask:
        task = await WifiTask.create(subscriber_id=sub.id, device_id=device.id, action=action,
                                     band=band, detail=detail, status="sending", created_at=now,
                                     using_db=tx)
        window = await WifiTask.filter(subscriber_id=sub.id, created_at__gt=since) \
            .using_db(tx).order_by("created_at").values_list("created_at", flat=True)
        if len(window) > CHANGES_PER_HOUR:
            oldest = cast(datetime, window[0])
            seconds = max(1, int((oldest + WINDOW - now).total_seconds()) + 1)
            raise TooManyRequests(  # rolls the insert back
                "rate_limited", f"you can make {CHANGES_PER_HOUR} WiFi changes per hour; "
                f"please try again in {(seconds + 59) // 60} minute(s)", retry_after=seconds)
        return task

    return await transaction(write, lock=sub.username)


async def _send(sub: Subscriber, task: WifiTask, action: str, ip: str,
                call: Any, audit_detail: dict[str, Any]) -> WifiTask:
    error: PortalError | None = None
    status: str  # the ACS task's state, or "failed" if it was never queued
    try:
        result: TaskResult = await call
        status, offline = result.state, result.offline
        task.acs_task_id = result.task_id
        if status == "done":
            _said(task, "done", "done")
        else:
            _said(task, result.message, result.message_code, result.message_params)
    except AcsUnavailable as exc:
        error = _unavailable(exc)
        status, offline = "failed", False
        _said(task, f"{exc}; nothing was changed", "acs_unavailable")
    except AcsError as exc:
        error = PortalError("acs_error", str(exc), 502)
        status, offline = "failed", False
        _said(task, str(exc), "acs_error")
    task.status, task.offline = status, offline

    async def write(tx: BaseDBAsyncClient) -> None:
        await task.save(using_db=tx, update_fields=["acs_task_id", "status", "offline",
                                                    "message", "message_code",
                                                    "message_params", "updated_at"])
        await journal.audit(tx, f"customer:{sub.username}", AUDIT_ACTIONS[action], sub.username,
                            ip=ip, task=task.id, device=task.device_id, status=status,
                            **audit_detail)

    await transaction(write, lock=sub.username)
    if error is not None:
        raise error
    return task


async def change(sub: Subscriber, band: object, ssid: object, passphrase: object, ip: str,
                 now: datetime | None = None) -> WifiTask:
    band = check_band(band)
    if ssid in (None, "") and passphrase in (None, ""):
        raise PortalError("nothing_to_change", "enter a new network name or password", 422)
    new_ssid = check_ssid(ssid) if ssid not in (None, "") else None
    new_pass = check_passphrase(passphrase) if passphrase not in (None, "") else None
    server = await acs_of(sub)
    client = client_of(server)
    device = await find_device(sub, server, client)
    network = device.network(band)
    if network is None:
        raise PortalError("no_such_network", f"your router has no {band} GHz network", 422)
    values: list[tuple[str, str]] = []
    if new_ssid is not None:
        values.append((network.ssid_path, new_ssid))
    if new_pass is not None:
        if network.passphrase_path is None:
            raise PortalError("passphrase_unsupported", "your router does not let us change "
                              "this network's password", 422)
        values.append((network.passphrase_path, new_pass))
    changed = [w for w, v in (("name", new_ssid), ("password", new_pass)) if v is not None]
    task = await _reserve(sub, device, "wifi", band, " and ".join(changed) + " changed",
                          now or datetime.now(UTC))
    audit: dict[str, Any] = {"band": band, "passphrase_changed": new_pass is not None}
    if new_ssid is not None:
        audit["ssid"] = new_ssid
    return await _send(sub, task, "wifi", ip, client.set_parameters(device.id, values), audit)


async def reboot(sub: Subscriber, ip: str, now: datetime | None = None) -> WifiTask:
    server = await acs_of(sub)
    client = client_of(server)
    device = await find_device(sub, server, client)
    task = await _reserve(sub, device, "reboot", None, "restart", now or datetime.now(UTC))
    return await _send(sub, task, "reboot", ip, client.reboot(device.id), {})


async def refresh(sub: Subscriber, task_id: int) -> WifiTask:
    """A task of THIS subscriber, with its state asked again from the ACS while pending."""
    task = await WifiTask.get_or_none(id=task_id, subscriber_id=sub.id)
    if task is None:
        raise NotFound("no_such_task", "no such change")
    if task.status != "pending" or not task.acs_task_id:
        return task
    server = await acs_of(sub)
    try:
        result = await client_of(server).task_state(task.device_id, task.acs_task_id)
    except (AcsUnavailable, AcsError):
        return task  # still pending as far as we know; the next poll asks again
    if result.state != "pending":
        task.status = result.state
        task.offline = False
        if result.state == "done":
            _said(task, "done", "done")
        else:
            _said(task, result.message, result.message_code, result.message_params)

        async def write(tx: BaseDBAsyncClient) -> None:
            await task.save(using_db=tx, update_fields=["status", "offline", "message",
                                                        "message_code", "message_params",
                                                        "updated_at"])

        await transaction(write, lock=sub.username)
    return task
