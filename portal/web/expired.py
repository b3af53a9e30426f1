"""The expired page: where an expired (or disabled) subscriber's web lookups land.

The resolver answers every name outside its walled garden with the portal's address
for such a subscriber (dns_filter, the 'expired' pseudo-category), so the browser
asks this portal for someone else's site: a Host that is none of ours. For a request
like that, outside the portal's own paths, from the address of an expired or
disabled subscriber's open session, the portal answers with a page branded as that
subscriber's reseller saying why and how to renew. Anyone else's foreign-Host
request is handled as before (421, 404). The portal's own names and paths, and its
API, are never intercepted.
"""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse, html

from portal import i18n
from portal.core import language, money, renewal
from portal.store.models import Reseller
from portal.web import branding
from portal.web.pages import render
from portal.web.request import client_address

OWN_PATHS = ("/customer/", "/operator/", "/docs")


def portal_url(request: Request, reseller: Reseller) -> str:
    """Where the subscriber signs in to renew: the reseller's own domain, else the
    portal's public URL, else its first configured name."""
    config = request.app.ctx.config
    public = str(config.get("portal", "public_url") or "").rstrip("/")
    if reseller.custom_domain:
        scheme = "https" if public.lower().startswith("https://") else "http"
        return f"{scheme}://{reseller.custom_domain}"
    if public:
        return public
    names = [h for h in config.get("portal", "hostnames", []) if h]
    return f"http://{names[0]}" if names else ""


async def intercept(request: Request) -> HTTPResponse | None:
    """The expired page for a lapsed subscriber's request to a foreign Host, else None."""
    if request.path.startswith(OWN_PATHS):
        return None
    host = branding.request_host(request)
    if not host or host in request.app.ctx.hostnames or branding.is_ip(host):
        return None
    lapsed = await renewal.lapsed_at(client_address(request))
    if lapsed is None:
        return None
    r = lapsed.reseller
    url = portal_url(request, r)
    # A foreign Host carries none of our cookies: the page speaks the stored language.
    lang = await language.subscriber_language(lapsed.username)
    ended = (lapsed.expires_at.strftime("%Y-%m-%d %H:%M") + " UTC" if lang == i18n.DEFAULT
             else i18n.date_time(lapsed.expires_at, lang))
    page = render(
        "expired.html", language=lang, ended=ended, brand=branding.of(r), lapsed=lapsed,
        host=host[:100],
        # "30 days", "يومان": the period in the language's plural forms
        duration=i18n.ngettext(lang, "{n} day", "{n} days", lapsed.period_days),
        price=(f"{money.fmt(lapsed.price_cents, r.currency)} {r.currency}"
               if lang == i18n.DEFAULT else i18n.money(lapsed.price_cents, r.currency, lang,
                                                       money.minor_units_or_2(r.currency))),
        renew_url=url + "/customer/invoices", portal=url,
        instructions=r.payment_instructions, contact=r.payment_contact)
    # Not cached: after a renewal the same address must reach the real site again.
    return html(page, status=200, headers={"Cache-Control": "no-store"})
