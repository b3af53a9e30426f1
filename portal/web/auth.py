"""Customer authentication for every /customer/api route.

The token comes only from `Authorization: Bearer`; the username used by every
query is the one in the validated token, never one from the request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from sanic import Request

from portal.core.auth import tokens
from portal.core.auth.keys import KeyRing
from portal.errors import Unauthorized
from portal.store import db
from portal.store.models import Subscriber
from portal.web import apidoc

Handler = Callable[..., Awaitable[Any]]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing_token", "please log in")
    return token.strip()


# The revocation check and the subscriber (with its token_epoch) in one round trip:
# every request pays it, and nothing more.
_TIME_COLUMNS = ("cycle_start", "expires_at", "created_at")
_AUTH_SQL = ("SELECT s.*, EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?) AS revoked"
             " FROM subscribers s WHERE s.username = ?")


# Tokens whose signature was verified: a token never changes, so verifying it
# again proves nothing. Expiry is checked on every use; revocation in the database.
_verified: OrderedDict[str, tokens.Claims] = OrderedDict()
_VERIFIED_MAX = 20000


def verified_claims(ring: KeyRing, token: str, now: datetime) -> tokens.Claims:
    claims = _verified.get(token)
    if claims is None:
        claims = tokens.decode(ring, token, "customer", now)
        _verified[token] = claims
        if len(_verified) > _VERIFIED_MAX:
            _verified.popitem(last=False)
    elif claims.expires_at <= now:
        del _verified[token]
        raise Unauthorized("token_expired", "your session has expired, please log in again")
    elif not ring.holds(claims.kid):  # its key was rotated out since
        del _verified[token]
        raise Unauthorized("invalid_token", "invalid session, please log in again")
    return claims


async def authenticate_customer(request: Request) -> Subscriber:
    claims = verified_claims(request.app.ctx.keyring, bearer_token(request), datetime.now(UTC))
    # Counted from the verified token, before any query: a flood costs no database work.
    request.app.ctx.limiter.hit_subscriber("customer", claims.username)
    rows = await db.fetch_indexed(_AUTH_SQL, [claims.jti, claims.username])
    if not rows:
        if await tokens.is_revoked(claims.jti):
            raise Unauthorized("token_revoked", "you have logged out, please log in again")
        raise Unauthorized("account_unavailable", "this account is not available")
    row = dict(rows[0])
    if row.pop("revoked"):
        raise Unauthorized("token_revoked", "you have logged out, please log in again")
    for key in _TIME_COLUMNS:  # SQLite gives text; fromisoformat is far cheaper than iso8601
        if isinstance(row[key], str):
            row[key] = datetime.fromisoformat(row[key])
    sub = Subscriber._init_from_db(**row)
    if sub.status != "active":
        raise Unauthorized("account_unavailable", "this account is not available")
    if claims.epoch != sub.token_epoch:  # password changed, disabled or signed out since
        raise tokens.signed_out()
    request.ctx.claims = claims
    request.ctx.subscriber = sub
    return sub


def customer(handler: Handler) -> Handler:
    @wraps(handler)
    async def wrapped(request: Request, *args: Any, **kwargs: Any) -> Any:
        await authenticate_customer(request)
        return await handler(request, *args, **kwargs)

    return apidoc.secured(wrapped)
