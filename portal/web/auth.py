"""Customer authentication for every /customer/api route.

The token comes only from `Authorization: Bearer`; the username used by every
query is the one in the validated token, never one from the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from sanic import Request

from portal.errors import Unauthorized
from portal.models import Subscriber
from portal.security import tokens
from portal.web import apidoc

Handler = Callable[..., Awaitable[Any]]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing_token", "please log in")
    return token.strip()


async def authenticate_customer(request: Request) -> Subscriber:
    claims = tokens.decode(request.app.ctx.jwt_key, bearer_token(request), "customer",
                           datetime.now(UTC))
    if await tokens.is_revoked(claims.jti):
        raise Unauthorized("token_revoked", "you have logged out, please log in again")
    sub = await Subscriber.get_or_none(username=claims.username)
    if sub is None or sub.status != "active":
        raise Unauthorized("account_unavailable", "this account is not available")
    request.ctx.claims = claims
    request.ctx.subscriber = sub
    return sub


def customer(handler: Handler) -> Handler:
    @wraps(handler)
    async def wrapped(request: Request, *args: Any, **kwargs: Any) -> Any:
        await authenticate_customer(request)
        return await handler(request, *args, **kwargs)

    return apidoc.secured(wrapped)
