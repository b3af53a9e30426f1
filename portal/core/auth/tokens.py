"""Customer (and operator) JWTs: HS256 pinned, 7 days, revocable by jti."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from portal.errors import Unauthorized
from portal.store.models import RevokedToken

ALGORITHM = "HS256"


@dataclass(frozen=True)
class Claims:
    type: str
    username: str
    jti: str
    issued_at: datetime
    expires_at: datetime


def issue(key: bytes, username: str, days: int, now: datetime, token_type: str = "customer"
          ) -> tuple[str, Claims]:
    jti = secrets.token_hex(16)
    exp = now + timedelta(days=days)
    name_claim = "customer_username" if token_type == "customer" else "operator_username"
    payload = {"type": token_type, name_claim: username, "iat": int(now.timestamp()),
               "exp": int(exp.timestamp()), "jti": jti}
    token = jwt.encode(payload, key, algorithm=ALGORITHM)
    return token, Claims(token_type, username, jti, now, exp)


def decode(key: bytes, token: str, expected_type: str, now: datetime | None = None) -> Claims:
    """Verify signature (HS256 only), expiry and type. Raises Unauthorized."""
    try:
        payload = jwt.decode(
            token, key, algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "jti", "type"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token_expired", "your session has expired, please log in again") \
            from None
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid_token", "invalid session, please log in again") from None
    if payload.get("type") != expected_type:
        raise Unauthorized("wrong_token_type", f"this needs a {expected_type} session")
    name_claim = "customer_username" if expected_type == "customer" else "operator_username"
    username = payload.get(name_claim)
    if not isinstance(username, str) or not username:
        raise Unauthorized("invalid_token", "invalid session, please log in again")
    return Claims(
        expected_type, username, str(payload["jti"]),
        datetime.fromtimestamp(payload["iat"], UTC), datetime.fromtimestamp(payload["exp"], UTC),
    )


async def is_revoked(jti: str) -> bool:
    return await RevokedToken.filter(jti=jti).exists()

