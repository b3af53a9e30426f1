"""Local peers for the notifier's channels: an SMTP server (aiosmtpd), an HTTP sink for
the SMS gateway and an HTTPS push service that decrypts what it receives.

Each records what arrived, with the monotonic time it arrived; the SMTP server can hold
a session at RCPT (before the notifier's point of no return) or after DATA (the message
taken), so a test can SIGKILL the notifier at either moment.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.policy
import http.server
import ipaddress
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import http_ece
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.portal import free_port


@dataclass
class Gate:
    """Holds the next SMTP session at `at` ('rcpt' or 'data') until released."""

    at: str
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[tuple[float, Message]] = []
        self.raw: list[bytes] = []  # each message as it came over the wire
        self.gate: Gate | None = None
        self.delay_s = 0.0  # each message takes the server this long to accept
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    def start(self) -> int:
        self.controller.start()
        return self.port

    def stop(self) -> None:
        if self.gate is not None:
            self.gate.release.set()
        self.controller.stop()

    async def _hold(self, at: str) -> None:
        gate = self.gate
        if gate is not None and gate.at == at and not gate.reached.is_set():
            gate.reached.set()
            await asyncio.to_thread(gate.release.wait)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        await self._hold("rcpt")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        msg = message_from_bytes(raw, policy=email.policy.default)
        with self.lock:
            self.messages.append((time.monotonic(), msg))
            self.raw.append(raw)
        await self._hold("data")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for _, m in self.messages if m["To"] == address]


class _Recorder(http.server.BaseHTTPRequestHandler):
    sink: Any

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status = self.sink.answer(self.path)
        with self.sink.lock:
            self.sink.requests.append((time.monotonic(), self.command, self.path,
                                       dict(self.headers), body))
        self.sink.hold.wait(30)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _handle

    def log_message(self, *args: Any) -> None:
        pass


class HttpSink:
    """An HTTP(S) server recording every request; `status` answers them."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.requests: list[tuple[float, str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.status = 200
        self.hold = threading.Event()  # cleared: requests wait for it (a hanging peer)
        self.hold.set()
        handler = type("Handler", (_Recorder,), {"sink": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str) -> int:
        return self.status

    def start(self) -> int:
        self.thread.start()
        return self.port

    def stop(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


def make_cert(directory: Path, name: str = "localhost") -> tuple[Path, Path, Path]:
    """A CA and a server certificate for `name` and 127.0.0.1: (ca, cert, key) files."""
    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    now = dt.datetime.now(dt.UTC)
    ca_key, srv_key = key(), key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ispedge test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    srv = (x509.CertificateBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .issuer_name(ca_name).public_key(srv_key.public_key()).serial_number(2)
           .not_valid_before(now - dt.timedelta(hours=1))
           .not_valid_after(now + dt.timedelta(days=1))
           .add_extension(x509.SubjectAlternativeName([
               x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
               critical=False)
           .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(srv_key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Browser:
    """A browser's push subscription keys, as PushManager.subscribe() makes them."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: __import__("os").urandom(16))

    def keys(self) -> dict[str, str]:
        point = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth,
                                 version="aes128gcm")
        return dict(json.loads(plain))
