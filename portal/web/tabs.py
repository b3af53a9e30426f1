"""The portal's tabs and which of them a subscriber may use.

A tab is shown only when its feature is enabled for the subscriber's reseller,
and its API refuses (403) otherwise: the same `enabled` rule serves both.
A tab whose feature is not built yet is simply not registered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from sanic import Request

from portal.errors import Forbidden
from portal.store import db
from portal.store.models import Reseller


@dataclass(frozen=True)
class Tab:
    name: str  # also the URL segment: /customer/<name>
    label: str
    icon: str
    enabled: Callable[[Reseller, Any], bool]
    disabled_message: str = "this feature is not enabled for your account"


def _always(reseller: Reseller, config: Any) -> bool:
    return True


always = _always  # for tabs every subscriber has: their API skips the reseller lookup


TABS: list[Tab] = [
    Tab("dashboard", "Dashboard", "◉", _always),
]


def register(tab: Tab, after: str | None = None) -> None:
    """Blueprints register their tab at import; order follows the seed's sidebar."""
    order = ["dashboard", "usage", "plans", "data", "wifi", "invoices", "support", "parental"]
    TABS.append(tab)
    TABS.sort(key=lambda t: order.index(t.name) if t.name in order else len(order))


def visible(reseller: Reseller, config: Any) -> list[dict[str, str]]:
    return [{"name": t.name, "label": t.label, "icon": t.icon,
             "url": "/customer/" if t.name == "dashboard" else f"/customer/{t.name}"}
            for t in TABS if t.enabled(reseller, config)]


def get(name: str) -> Tab:
    return next(t for t in TABS if t.name == name)


Handler = Callable[..., Awaitable[Any]]


def requires(tab_name: str) -> Callable[[Handler], Handler]:
    """Refuse an API call whose tab is disabled for the signed-in subscriber's reseller.

    Use under @auth.customer (it needs request.ctx.subscriber).
    """

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def wrapped(request: Request, *args: Any, **kwargs: Any) -> Any:
            tab = get(tab_name)
            if tab.enabled is not _always:
                # Inline indexed read, not the ORM's relation fetch: every API call of a
                # gated tab pays it, and through aiosqlite's thread it was ~20 % of the
                # portal's CPU in a Buy Data run (py-spy, bench/billing_bench.py).
                reseller = await db.fetch_model(
                    Reseller, "SELECT * FROM resellers WHERE id = ?",
                    [request.ctx.subscriber.reseller_id], indexed=True)
                if reseller is None or not tab.enabled(reseller, request.app.ctx.config):
                    raise Forbidden("feature_disabled", tab.disabled_message)
            return await handler(request, *args, **kwargs)

        return wrapped

    return decorate
