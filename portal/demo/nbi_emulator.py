"""A GenieACS northbound API (NBI) emulator: a real HTTP server on loopback.

`ispedge demo` runs one with a router for every demo subscriber, so the WiFi
tab works without an ACS; the tests run it to drive every ACS answer.

Speaks the NBI's wire shapes: GET /devices/?query=&projection= (device documents
with `_value` leaves), POST /devices/<id>/tasks?timeout=&connection_request
(200 + task when the router is online and runs it; 202 "Task queued but not
processed" when offline; 202 "Task faulted" plus a /faults entry when the router
refuses), GET /tasks/?query=, GET /faults/?query=. Offline routers run their
queued tasks when `connect()` is called (their next inform).

Knobs: `delay_s` (slow ACS), `fault_next` (the next task faults), `credentials`
(basic auth required). Every request is recorded (method, path, body) so tests
can assert what did or did not reach the ACS.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


def _leaf(value: Any) -> dict[str, Any]:
    return {"_value": value, "_type": "xsd:string", "_timestamp": "2026-11-01T00:00:00.000Z",
            "_writable": True}


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    node = doc
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {"_object": True})
    node[parts[-1]] = _leaf(value)


def _get(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def tr098_params(username: str, ssid24: str = "Home-2G", ssid5: str = "Home-5G",
                 key_param: str = "PreSharedKey.1.KeyPassphrase") -> dict[str, str]:
    w = "InternetGatewayDevice.LANDevice.1.WLANConfiguration"
    return {
        "InternetGatewayDevice.DeviceInfo.ModelName": "HG8245H",
        "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.Username":
            username,
        f"{w}.1.SSID": ssid24, f"{w}.1.{key_param}": "", f"{w}.1.Standard": "b,g,n",
        f"{w}.5.SSID": ssid5, f"{w}.5.{key_param}": "", f"{w}.5.Standard": "a,n,ac",
    }


def tr181_params(username: str, ssid24: str = "Home-2G", ssid5: str = "Home-5G"
                 ) -> dict[str, str]:
    return {
        "Device.DeviceInfo.ModelName": "AX3000",
        "Device.PPP.Interface.1.Username": username,
        "Device.WiFi.Radio.1.OperatingFrequencyBand": "5GHz",
        "Device.WiFi.Radio.2.OperatingFrequencyBand": "2.4GHz",
        # SSID.1 sits on the 5 GHz radio: the band comes from LowerLayers, not the number.
        "Device.WiFi.SSID.1.SSID": ssid5, "Device.WiFi.SSID.1.LowerLayers": "Device.WiFi.Radio.1",
        "Device.WiFi.SSID.2.SSID": ssid24,
        "Device.WiFi.SSID.2.LowerLayers": "Device.WiFi.Radio.2",
        "Device.WiFi.AccessPoint.1.SSIDReference": "Device.WiFi.SSID.2",
        "Device.WiFi.AccessPoint.1.Security.KeyPassphrase": "",
        "Device.WiFi.AccessPoint.2.SSIDReference": "Device.WiFi.SSID.1",
        "Device.WiFi.AccessPoint.2.Security.KeyPassphrase": "",
    }


@dataclass
class FakeDevice:
    id: str
    params: dict[str, str]
    tags: list[str] = field(default_factory=list)
    online: bool = True
    serial: str = "SN0001"
    manufacturer: str = "Huawei"
    product_class: str = "HG8245H"
    reboots: int = 0

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "_id": self.id, "_lastInform": "2026-11-27T10:00:00.000Z",
            "_registered": "2026-01-01T00:00:00.000Z", "_tags": list(self.tags),
            "_deviceId": {"_Manufacturer": self.manufacturer, "_OUI": "00E0FC",
                          "_ProductClass": self.product_class, "_SerialNumber": self.serial},
        }
        for path, value in self.params.items():
            _put(doc, path, value)
        return doc


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    authorization: str | None


class GenieAcsEmulator:
    def __init__(self, credentials: tuple[str, str] | None = None):
        self.devices: dict[str, FakeDevice] = {}
        self.tasks: dict[str, dict[str, Any]] = {}  # queued, by _id
        self.faults: dict[str, dict[str, Any]] = {}
        self.requests: list[Request] = []
        self.credentials = credentials
        self.delay_s = 0.0
        self.fault_next = False
        self.lock = threading.Lock()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                emulator._handle(self, "GET")

            def do_POST(self) -> None:
                emulator._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> GenieAcsEmulator:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> GenieAcsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- setting up routers and driving them --------------------------------------

    def add_device(self, device: FakeDevice) -> FakeDevice:
        self.devices[device.id] = device
        return device

    def connect(self, device_id: str) -> None:
        """The router's next inform: it runs every task queued for it."""
        with self.lock:
            for task_id, task in list(self.tasks.items()):
                if task["device"] == device_id:
                    self._run(self.devices[device_id], task)
                    del self.tasks[task_id]

    def posted_tasks(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.requests
                if r.method == "POST" and r.path.endswith("/tasks")]

    # --- the NBI ---------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        parts = urlsplit(h.path)
        req = Request(method, unquote(parts.path), parse_qs(parts.query, keep_blank_values=True),
                      body, h.headers.get("Authorization"))
        self.requests.append(req)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.credentials is not None:
            expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
            if req.authorization != expected:
                return self._reply(h, 401, "Unauthorized", b"Unauthorized")
        segments = [s for s in parts.path.split("/") if s]
        with self.lock:
            if method == "GET" and segments in (["devices"], ["tasks"], ["faults"]):
                query = json.loads(req.query.get("query", ["{}"])[0] or "{}")
                projection = req.query.get("projection", [""])[0]
                return self._json(h, 200, "OK", self._find(segments[0], query, projection))
            if method == "POST" and len(segments) == 3 and segments[0] == "devices" \
                    and segments[2] == "tasks":
                return self._post_task(h, unquote(segments[1]), req)
        self._reply(h, 404, "Not Found", b"Not found")

    def _find(self, collection: str, query: dict[str, Any], projection: str
              ) -> list[dict[str, Any]]:
        if collection == "devices":
            docs = [d.document() for d in self.devices.values()]
        elif collection == "tasks":
            docs = list(self.tasks.values())
        else:
            docs = list(self.faults.values())
        found = [d for d in docs if _matches(d, query)]
        if projection and collection == "devices":
            keep = projection.split(",")
            found = [_project(d, keep) for d in found]
        return found

    def _post_task(self, h: BaseHTTPRequestHandler, device_id: str, req: Request) -> None:
        device = self.devices.get(device_id)
        if device is None:
            return self._reply(h, 404, "No such device", b"No such device")
        try:
            task = json.loads(req.body)
        except ValueError:
            return self._reply(h, 400, "Bad Request", b"Invalid JSON")
        task_id = secrets.token_hex(12)
        task.update({"_id": task_id, "device": device_id,
                     "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")})
        if "connection_request" not in req.query:
            self.tasks[task_id] = task
            return self._json(h, 200, "OK", task)
        if not device.online:
            self.tasks[task_id] = task
            return self._json(h, 202, "Task queued but not processed", task)
        if self.fault_next:
            self.fault_next = False
            self.tasks[task_id] = task  # a faulted task stays until retried or deleted
            self.faults[f"{device_id}:task_{task_id}"] = {
                "_id": f"{device_id}:task_{task_id}", "device": device_id,
                "channel": f"task_{task_id}", "code": "cwmp.9007",
                "message": "Invalid parameter value",
                "detail": {"faultCode": "9007", "faultString": "Invalid parameter value"},
                "timestamp": task["timestamp"], "retries": 0,
            }
            return self._json(h, 202, "Task faulted", task)
        self._run(device, task)
        self._json(h, 200, "OK", task)

    def _run(self, device: FakeDevice, task: dict[str, Any]) -> None:
        if task["name"] == "setParameterValues":
            for path, value, *_ in task["parameterValues"]:
                device.params[path] = value
        elif task["name"] == "reboot":
            device.reboots += 1

    def _json(self, h: BaseHTTPRequestHandler, status: int, reason: str, data: Any) -> None:
        self._reply(h, status, reason, json.dumps(data).encode(), "application/json")

    def _reply(self, h: BaseHTTPRequestHandler, status: int, reason: str, body: bytes,
               ctype: str = "text/plain") -> None:
        h.send_response(status, reason)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


def _value_of(doc: dict[str, Any], key: str) -> Any:
    node = _get(doc, key)
    return node.get("_value") if isinstance(node, dict) and "_value" in node else node


def _matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    for key, want in query.items():
        if key == "$or":
            if not any(_matches(doc, q) for q in want):
                return False
            continue
        if key == "$and":
            if not all(_matches(doc, q) for q in want):
                return False
            continue
        have = doc.get(key) if key.startswith("_") else _value_of(doc, key)
        if isinstance(have, list):
            if want not in have:
                return False
        elif have != want:
            return False
    return True


def _project(doc: dict[str, Any], keep: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"_id": doc["_id"]}
    for path in keep:
        node = _get(doc, path)
        if node is None:
            continue
        parts = path.split(".")
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = node
    return out
