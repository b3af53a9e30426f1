"""Installable portal: web app manifest, icons and service worker, all under /customer/.

The manifest carries the branding of the host (a reseller's custom domain shows
its name and colour on the home screen). The service worker's scope is
/customer/; it caches only the static shell and never an API answer.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from portal.web import branding

bp = Blueprint("pwa")

SW_PATH = "/customer/sw.js"


@bp.get("/customer/manifest.webmanifest")
async def manifest(request: Request) -> HTTPResponse:
    brand = await branding.for_host(request)
    colour = brand.primary_color.lstrip("#")
    body = {
        "name": brand.company_name, "short_name": brand.company_name[:12],
        "description": brand.tagline or "Your internet account",
        "id": "/customer/", "start_url": "/customer/", "scope": "/customer/",
        "display": "standalone", "background_color": "#f4f6f9",
        "theme_color": brand.primary_color,
        "icons": [{"src": f"/customer/icons/{size}.png?c={colour}", "sizes": f"{size}x{size}",
                   "type": "image/png", "purpose": "any"} for size in (192, 512)],
    }
    return json(body, content_type="application/manifest+json",
                headers={"Cache-Control": "no-cache"})


@bp.get("/customer/icons/<file:str>")
async def icon(request: Request, file: str) -> HTTPResponse:
    size = {"192.png": 192, "512.png": 512}.get(file, 0)
    if not size:
        from portal.errors import NotFound

        raise NotFound("no_icon", "no such icon")
    colour = request.args.get("c", "0b6bcb")
    if len(colour) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in colour):
        colour = "0b6bcb"
    return raw(ring_png(size, colour.lower()), content_type="image/png",
               headers={"Cache-Control": "public, max-age=86400"})


@lru_cache(maxsize=32)
def ring_png(size: int, colour: str) -> bytes:
    """A white usage ring on the brand colour: a square PNG built without any image library."""
    fg = (255, 255, 255)
    bg = tuple(int(colour[i:i + 2], 16) for i in (0, 2, 4))
    c, outer, inner = (size - 1) / 2, size * 0.34, size * 0.22
    rows = []
    for y in range(size):
        line = bytearray(b"\x00")
        for x in range(size):
            d2 = (x - c) ** 2 + (y - c) ** 2
            line += bytes(fg if inner * inner <= d2 <= outer * outer else bg)
        rows.append(bytes(line))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0,
                                                               0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


SERVICE_WORKER = """// ispedge portal service worker: offline shell only, never API data.
"use strict";
const CACHE = "ispedge-shell-v1";
const SHELL = ["/customer/static/style.css", "/customer/static/app.js",
  "/customer/static/tabs/dashboard.js", "/customer/static/tabs/usage.js"];
self.addEventListener("install", function (e) {
  e.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(SHELL); })
    .then(function () { return self.skipWaiting(); }));
});
self.addEventListener("activate", function (e) {
  e.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});
self.addEventListener("fetch", function (e) {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.startsWith("/customer/api/")) return;  // always the network
  if (url.pathname.startsWith("/customer/static/")) {
    // Network first so a deploy shows at once; the cache when offline.
    e.respondWith(fetch(e.request).then(function (res) {
      const copy = res.clone();
      caches.open(CACHE).then(function (c) { c.put(e.request, copy); });
      return res;
    }).catch(function () { return caches.match(e.request); }));
  }
});
"""


@bp.get(SW_PATH)
async def service_worker(request: Request) -> HTTPResponse:
    return raw(SERVICE_WORKER.encode(), content_type="text/javascript; charset=utf-8",
               headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/customer/"})
