"""Web Push (RFC 8030/8291/8292) to the installed PWA: http_ece encrypts, py_vapid signs.

Endpoints come from browsers, so the notifier must not become a way into the
ISP's network: only https, the host resolved here and every address it
resolves to must be public (ipaddress' is_global, no loopback, private, link
local, CGNAT, multicast or reserved range, IPv4-mapped ones unwrapped), the
connection goes to that very address (the Host header and TLS SNI/certificate
check keep the name, so a second lookup cannot answer differently), and
redirects are never followed.

TEST_ALLOWANCE is the one exception and it is not configuration: a module
attribute only Python code in the same process can set (tests/notifier sets
it for its local push endpoint on 127.0.0.1 with its own CA). No config key
or environment variable reaches it, so a production config cannot turn it on.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid

from portal.notifier.channels import Abandoned, Ambiguous, Commit, SendError, tls_context

TTL_S = 86400
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Allowance:
    """Test only: these networks are let through, and TLS trusts `ca_file`."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    ca_file: str


TEST_ALLOWANCE: Allowance | None = None


class Refused(SendError):
    def __init__(self, message: str):
        super().__init__(message, retry=False, before_commit=True)


def public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _allowed(address: IPAddress) -> bool:
    if public(address):
        return True
    allowance = TEST_ALLOWANCE
    return allowance is not None and any(address in n for n in allowance.networks)


async def resolve_public(host: str, port: int) -> IPAddress:
    """The address to connect to; Refused if any address of the host is not public."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise SendError(f"push endpoint {host}: does not resolve ({exc})",
                            before_commit=True) from None
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise SendError(f"push endpoint {host}: no address", before_commit=True)
    bad = [a for a in found if not _allowed(a)]
    if bad:
        raise Refused(f"push endpoint {host} resolves to a non-public address ({bad[0]}):"
                      " refused")
    return found[0]


def vapid_headers(private_pem: str, endpoint: str, subject: str, now: float) -> dict[str, str]:
    parts = urlsplit(endpoint)
    vapid = Vapid.from_pem(private_pem.encode())
    claims = {"aud": f"{parts.scheme}://{parts.netloc}", "sub": subject,
              "exp": int(now) + 12 * 3600}
    return {k: str(v) for k, v in vapid.sign(claims).items()}


def payload(row: dict[str, Any]) -> bytes:
    import json

    return json.dumps({"title": row["subject"], "body": row["body"], "event": row["event"],
                       "id": row["id"]}, ensure_ascii=False).encode()


async def send(sub: dict[str, Any] | None, row: dict[str, Any], private_pem: str, subject: str,
               timeout_s: float, commit: Commit) -> None:
    if sub is None:
        raise SendError("the browser's push subscription was removed", retry=False,
                        before_commit=True)
    endpoint = str(sub["endpoint"])
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname:
        raise Refused("push endpoint is not https: refused")
    host, port = parts.hostname, parts.port or 443
    address = await resolve_public(host, port)
    body = encrypt(payload(row), str(sub["p256dh"]), str(sub["auth"]))
    headers = {"TTL": str(TTL_S), "Content-Encoding": "aes128gcm",
               "Content-Type": "application/octet-stream", "Urgency": "normal",
               "Host": parts.netloc.rpartition("@")[2],
               **vapid_headers(private_pem, endpoint, subject, time.time())}
    # Connect to the address checked above, not to a second lookup of the name.
    literal = f"[{address}]" if address.version == 6 else str(address)
    url = parts._replace(netloc=f"{literal}:{port}").geturl()
    allowance = TEST_ALLOWANCE
    verify = tls_context()
    if allowance is not None and not public(address):
        verify = tls_context(allowance.ca_file)
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False, trust_env=False,
                                 verify=verify) as client:
        if not await commit():
            raise Abandoned("claim taken back")
        try:
            resp = await client.post(url, content=body, headers=headers,
                                     extensions={"sni_hostname": host})
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise SendError(f"push service unreachable: {exc!r}"[:300]) from None
        except httpx.HTTPError as exc:
            raise Ambiguous(f"push service: no answer: {exc!r}"[:300]) from None
    status = resp.status_code
    if status in (200, 201, 202, 204):
        return
    if status in (404, 410):
        raise SendError(f"push subscription expired ({status})", retry=False)
    if 300 <= status < 400:
        raise SendError(f"push service redirected ({status}): not followed", retry=False)
    raise SendError(f"push service answered {status}", retry=status in (408, 429) or status >= 500)


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encrypt(data: bytes, p256dh: str, auth: str) -> bytes:
    """RFC 8291 aes128gcm to the browser's keys, from a fresh ephemeral key pair."""
    server_key = ec.generate_private_key(ec.SECP256R1())
    encrypted: bytes = http_ece.encrypt(data, private_key=server_key, dh=_unb64url(p256dh),
                                        auth_secret=_unb64url(auth), version="aes128gcm")
    return encrypted
