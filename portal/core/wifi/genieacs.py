"""GenieACS over its northbound HTTP API (NBI, default port 7557).

- GET  /devices/?query=<mongo json>&projection=a,b   device documents
- POST /devices/<id>/tasks?timeout=ms&connection_request   queue a task and poke
  the router: 200 = the router ran it; 202 "Task faulted"; 202 with any other
  reason ("Task queued but not processed", a connection request error) = queued
  for the router's next contact.
- GET  /tasks/?query={"_id": id}   a task still queued;  GET /faults/?query=...
  a task that faulted (fault id "<device>:task_<task id>").

Never logs or raises request bodies: they may hold a WiFi passphrase.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from portal.core.wifi import datamodel
from portal.core.wifi.acs import AcsError, AcsUnavailable, Device, Match, TaskResult

PROJECTION = ",".join([
    "_id", "_lastInform", "_deviceId", "_tags",
    "InternetGatewayDevice.DeviceInfo.ModelName",
    "InternetGatewayDevice.LANDevice.1.WLANConfiguration",
    "Device.DeviceInfo.ModelName", "Device.WiFi",
])
# How long GenieACS waits for the router to run a task after the connection request.
CONNECTION_REQUEST_WAIT_MS = 3000


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """GenieACS nests parameters as objects whose leaves carry `_value`."""
    out: dict[str, str] = {}
    for key, value in doc.items():
        if key.startswith("_") or not isinstance(value, dict):
            continue
        path = f"{prefix}{key}"
        if "_value" in value:
            out[path] = "" if value["_value"] is None else str(value["_value"])
        out.update(flatten(value, path + "."))
    return out


def parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def device_of(doc: dict[str, Any]) -> Device:
    params = flatten(doc)
    ids = doc.get("_deviceId") or {}
    model = params.get("Device.DeviceInfo.ModelName") or params.get(
        "InternetGatewayDevice.DeviceInfo.ModelName") or str(ids.get("_ProductClass", ""))
    return Device(
        id=str(doc["_id"]), manufacturer=str(ids.get("_Manufacturer", "")), model=model,
        serial=str(ids.get("_SerialNumber", "")), last_contact=parse_time(doc.get("_lastInform")),
        data_model=datamodel.data_model(params), networks=tuple(datamodel.networks(params)),
    )


class GenieAcsClient:
    def __init__(self, url: str, username: str = "", password: str = "",
                 timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None):
        self.url = url.rstrip("/")
        self.auth = httpx.BasicAuth(username, password) if username else None
        self.timeout = httpx.Timeout(timeout_s)
        self.transport = transport

    async def _request(self, method: str, path: str, params: dict[str, str] | None = None,
                       body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            async with httpx.AsyncClient(auth=self.auth, timeout=self.timeout,
                                         transport=self.transport) as client:
                response = await client.request(method, self.url + path, params=params,
                                                json=body)
        except httpx.TimeoutException:
            raise AcsUnavailable("the router management service did not answer in time") \
                from None
        except httpx.HTTPError:
            raise AcsUnavailable("the router management service cannot be reached") from None
        if response.status_code == 401:
            raise AcsError("the router management service refused our credentials")
        if response.status_code >= 500:
            raise AcsUnavailable(f"the router management service failed "
                                 f"(HTTP {response.status_code})")
        return response

    async def _query(self, collection: str, query: dict[str, Any],
                     projection: str | None = None) -> list[dict[str, Any]]:
        params = {"query": json.dumps(query)}
        if projection:
            params["projection"] = projection
        r = await self._request("GET", f"/{collection}/", params=params)
        if r.status_code != 200:
            raise AcsError(f"the router management service refused a query "
                           f"(HTTP {r.status_code})")
        try:
            rows = r.json()
        except ValueError:
            raise AcsError("the router management service sent an unreadable answer") from None
        if not isinstance(rows, list):
            raise AcsError("the router management service sent an unexpected answer")
        return [row for row in rows if isinstance(row, dict)]

    async def find_device(self, username: str, match: Match) -> Device | None:
        if match == "tag":
            query: dict[str, Any] = {"_tags": username}
        else:
            query = {"$or": [{datamodel.TR098_USERNAME: username},
                             {datamodel.TR181_USERNAME: username}]}
        docs = [d for d in await self._query("devices", query, PROJECTION) if "_id" in d]
        if not docs:
            return None
        # A replaced router may linger in the ACS: the one heard from last is the one in use.
        docs.sort(key=lambda d: str(d.get("_lastInform") or ""), reverse=True)
        return device_of(docs[0])

    async def _task(self, device_id: str, task: dict[str, Any]) -> TaskResult:
        r = await self._request(
            "POST", f"/devices/{quote(device_id, safe='')}/tasks",
            params={"timeout": str(CONNECTION_REQUEST_WAIT_MS), "connection_request": ""},
            body=task,
        )
        if r.status_code == 404:
            raise AcsError("the router is no longer known to the management service")
        if r.status_code not in (200, 202):
            raise AcsError(f"the router management service refused the change "
                           f"(HTTP {r.status_code})")
        try:
            task_id = str(r.json()["_id"])
        except (ValueError, KeyError, TypeError):
            raise AcsError("the router management service sent an unreadable answer") from None
        if r.status_code == 200:
            return TaskResult(task_id, "done")
        if r.reason_phrase == "Task faulted":
            return await self.task_state(device_id, task_id)
        return TaskResult(task_id, "pending", offline=True,
                          message="will apply when your router next connects",
                          message_code="next_contact")

    async def set_parameters(self, device_id: str, values: list[tuple[str, str]]) -> TaskResult:
        return await self._task(device_id, {
            "name": "setParameterValues",
            "parameterValues": [[path, value, "xsd:string"] for path, value in values],
        })

    async def reboot(self, device_id: str) -> TaskResult:
        return await self._task(device_id, {"name": "reboot"})

    async def task_state(self, device_id: str, task_id: str) -> TaskResult:
        faults = await self._query("faults", {"_id": f"{device_id}:task_{task_id}"})
        if faults:
            # Only the fault code: a router's fault text may quote the value it refused.
            code = str(faults[0].get("code") or "fault")[:40]
            return TaskResult(task_id, "faulted",
                              message=f"your router refused the change ({code})",
                              message_code="router_refused", message_params={"code": code})
        if await self._query("tasks", {"_id": task_id}):
            return TaskResult(task_id, "pending", offline=True,
                              message="will apply when your router next connects",
                              message_code="next_contact")
        return TaskResult(task_id, "done")
