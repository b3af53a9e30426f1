"""Which reseller's identity a request shows: by Host before login, by owner after."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sanic import Request

from portal.errors import PortalError
from portal.i18n import N_
from portal.store.models import Reseller


@dataclass(frozen=True)
class Brand:
    reseller_id: int | None
    company_name: str
    tagline: str
    footer_text: str
    primary_color: str
    has_logo: bool

    def as_json(self) -> dict[str, object]:
        logo = f"/customer/branding/logo/{self.reseller_id}" if self.has_logo else None
        return {"company_name": self.company_name, "tagline": self.tagline,
                "footer_text": self.footer_text, "primary_color": self.primary_color,
                "logo_url": logo}


# (its tagline is ours, so base.html translates it; a reseller's own is shown as written)
DEFAULT = Brand(None, "ispedge", N_("Your internet, in your hands"), "", "#0b6bcb", False)


def of(reseller: Reseller) -> Brand:
    return Brand(reseller.id, reseller.company_name or reseller.name, reseller.tagline,
                 reseller.footer_text, reseller.primary_color, bool(reseller.logo_content_type))


def request_host(request: Request) -> str:
    host = request.headers.get("host", "").strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def for_host(request: Request) -> Brand:
    """A custom domain shows its reseller; our own names and IPs show the default.

    Any other Host is refused: the portal never serves an arbitrary domain.
    """
    host = request_host(request)
    reseller = await Reseller.get_or_none(custom_domain=host) if host else None
    if reseller is not None:
        return of(reseller)
    if not host or is_ip(host) or host in request.app.ctx.hostnames:
        root = await Reseller.filter(parent_id=None).order_by("id").first()
        return of(root) if root else DEFAULT
    raise PortalError("unknown_domain", f"this portal does not serve {host[:100]!r}", 421)
