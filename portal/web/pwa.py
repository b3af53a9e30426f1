"""Installable portal: web app manifest, icons and service worker, all under /customer/.

The manifest carries the branding of the host (a reseller's custom domain shows
its name and colour on the home screen). The service worker's scope is
/customer/; it caches only the static shell and never an API answer.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections import OrderedDict

from PIL import Image, ImageDraw
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from portal import i18n
from portal.i18n import N_
from portal.store.models import Reseller
from portal.web import branding, language

bp = Blueprint("pwa")

SW_PATH = "/customer/sw.js"


DESCRIPTION = N_("Your internet account")


def manifest_language(request: Request) -> str:
    """The page links the manifest with ?lang= (a manifest is fetched without cookies);
    without it, the device's language (cookie, Accept-Language)."""
    asked = request.args.get("lang")
    return asked if asked in i18n.LANGUAGES else language.page_language(request)


@bp.get("/customer/manifest.webmanifest")
async def manifest(request: Request) -> HTTPResponse:
    """In the page's language: `lang`, `dir` and the description; the name is the
    reseller's own (not translated), our default tagline is."""
    brand = await branding.for_host(request)
    lang = manifest_language(request)
    colour = brand.primary_color.lstrip("#")
    description = brand.tagline if brand.reseller_id is not None else \
        i18n.gettext(lang, brand.tagline)
    body = {
        "name": brand.company_name, "short_name": brand.company_name[:12],
        "description": description or i18n.gettext(lang, DESCRIPTION),
        "lang": lang, "dir": i18n.direction(lang),
        "id": "/customer/", "start_url": "/customer/", "scope": "/customer/",
        "display": "standalone", "background_color": "#f4f6f9",
        "theme_color": brand.primary_color,
        "icons": [{"src": f"/customer/icons/{size}.png?c={colour}", "sizes": f"{size}x{size}",
                   "type": "image/png", "purpose": "any"} for size in (192, 512)],
    }
    return json(body, content_type="application/manifest+json",
                headers={"Cache-Control": "no-cache", "Vary": "Accept-Language, Cookie"})


@bp.get("/customer/icons/<file:str>")
async def icon(request: Request, file: str) -> HTTPResponse:
    size = ICON_SIZES.get(file, 0)
    if not size:
        from portal.errors import NotFound

        raise NotFound("no_icon", "no such icon")
    colour = request.args.get("c", DEFAULT_COLOUR).lower()
    if not HEX_COLOUR.fullmatch(colour):
        colour = DEFAULT_COLOUR
    return raw(await ring_png(size, colour), content_type="image/png",
               headers={"Cache-Control": "public, max-age=86400"})


ICON_SIZES = {"192.png": 192, "512.png": 512}
DEFAULT_COLOUR = branding.DEFAULT.primary_color.lstrip("#")
HEX_COLOUR = re.compile(r"[0-9a-f]{6}")
ICON_CACHE_MAX = 64

# Drawn icons by (size, colour), oldest first; a future while one is being drawn, so
# forty requests for one new colour draw it once.
_icons: OrderedDict[tuple[int, str], asyncio.Future[bytes]] = OrderedDict()


async def ring_png(size: int, colour: str) -> bytes:
    """The icon for a brand colour, drawn at most once per (size, colour) while cached.

    Only colours some reseller uses (or the default) are drawn: any other `c` gets the
    default icon, so random colours cannot make the portal draw. Drawing runs in the
    default executor, never on the event loop.
    """
    key = (size, colour)
    cached = _icons.get(key)
    if cached is None:
        if colour != DEFAULT_COLOUR and colour not in await brand_colours():
            return await ring_png(size, DEFAULT_COLOUR)
        cached = _icons.get(key)  # drawn by another request while we asked the database
    if cached is None:
        cached = asyncio.get_running_loop().run_in_executor(None, draw_ring, size, colour)
        _icons[key] = cached
        while len(_icons) > ICON_CACHE_MAX:
            _icons.popitem(last=False)
        try:
            return await cached
        except Exception:
            _icons.pop(key, None)
            raise
    _icons.move_to_end(key)
    return await cached


_colours: tuple[float, frozenset[str]] = (0.0, frozenset())
COLOURS_TTL_S = 10.0


async def brand_colours() -> frozenset[str]:
    """The colours resellers use, read at most every COLOURS_TTL_S: a flood of random
    colours costs no query each (a rebrand shows its icon within seconds)."""
    global _colours
    read_at, colours = _colours
    if time.monotonic() - read_at > COLOURS_TTL_S:
        rows = await Reseller.all().values_list("primary_color", flat=True)
        colours = frozenset(str(c).lstrip("#").lower() for c in rows if c)
        _colours = (time.monotonic(), colours)
    return colours


def draw_ring(size: int, colour: str) -> bytes:
    """A white usage ring on the brand colour, as a square PNG (Pillow)."""
    bg = (int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16))
    image = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(image)
    centre = (size - 1) / 2
    for radius, fill in ((size * 0.34, (255, 255, 255)), (size * 0.22, bg)):
        draw.ellipse((centre - radius, centre - radius, centre + radius, centre + radius),
                     fill=fill)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


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
// Web Push from the notifier (portal/notifier): {title, body, event, id}, decrypted by
// the browser; shown as a notification that opens the portal when tapped.
self.addEventListener("push", function (e) {
  let data = {};
  try { data = e.data ? e.data.json() : {}; } catch (err) { data = { body: e.data.text() }; }
  e.waitUntil(self.registration.showNotification(data.title || "Your internet account", {
    body: data.body || "", tag: "ispedge-" + (data.id || Date.now()),
    icon: "/customer/icons/192.png", data: { url: "/customer/" } }));
});
self.addEventListener("notificationclick", function (e) {
  e.notification.close();
  e.waitUntil(self.clients.matchAll({ type: "window" }).then(function (list) {
    for (const c of list) {
      if (c.url.indexOf("/customer/") >= 0 && "focus" in c) return c.focus();
    }
    return self.clients.openWindow("/customer/");
  }));
});
"""


@bp.get(SW_PATH)
async def service_worker(request: Request) -> HTTPResponse:
    return raw(SERVICE_WORKER.encode(), content_type="text/javascript; charset=utf-8",
               headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/customer/"})
