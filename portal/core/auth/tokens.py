"""Customer (and operator) JWTs: HS256 pinned, 7 days, a key id, an epoch, revocable by jti.

`kid` (header) names the signing key in the shared key ring (portal/core/auth/keys.py),
so a key can rotate without logging anyone out. `epoch` (claim) is the account's
token_epoch when the token was issued: a password change, disabling or "sign out
everywhere" bumps the account's epoch and every older token is refused. A token
from before epochs existed has none and counts as epoch 0.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from portal.core.auth.keys import KeyRing
from portal.errors import Unauthorized
from portal.store.models import RevokedToken

ALGORITHM = "HS256"
# An admin who must use a second factor and has none yet (require_totp_for_admins)
# gets this type after the right password: a short token the operator routes refuse,
# good only for turning on two-step sign-in (portal/core/auth/second_factor.py).
OPERATOR_ENROLL = "operator_enroll"


@dataclass(frozen=True)
class Claims:
    type: str
    username: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    epoch: int = 0
    kid: str | None = None  # the signing key's id (None: a legacy token)


def issue(ring: KeyRing, username: str, days: int, now: datetime, token_type: str = "customer",
          epoch: int = 0, lifetime: timedelta | None = None) -> tuple[str, Claims]:
    """A signed token for `days` (or `lifetime` when given)."""
    jti = secrets.token_hex(16)
    exp = now + (timedelta(days=days) if lifetime is None else lifetime)
    name_claim = "customer_username" if token_type == "customer" else "operator_username"
    payload = {"type": token_type, name_claim: username, "iat": int(now.timestamp()),
               "exp": int(exp.timestamp()), "jti": jti, "epoch": epoch}
    key = ring.current
    token = jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": ring.current_kid})
    return token, Claims(token_type, username, jti, now, exp, epoch, ring.current_kid)


def _invalid() -> Unauthorized:
    return Unauthorized("invalid_token", "invalid session, please log in again")


def decode(ring: KeyRing, token: str, expected_type: str, now: datetime | None = None,
           also: tuple[str, ...] = ()) -> Claims:
    """Verify signature (HS256 only, with the key its kid names), expiry and type
    (`expected_type`, or one of `also`). Raises Unauthorized."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError:
        raise _invalid() from None
    if kid is not None and not isinstance(kid, str):
        raise _invalid()
    key = ring.verifying_key(kid)
    if key is None:
        raise _invalid()
    try:
        payload = jwt.decode(
            token, key, algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "jti", "type"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token_expired", "your session has expired, please log in again") \
            from None
    except jwt.InvalidTokenError:
        raise _invalid() from None
    token_type = payload.get("type")
    if token_type != expected_type and token_type not in also:
        raise Unauthorized("wrong_token_type", f"this needs a {expected_type} session")
    name_claim = "customer_username" if token_type == "customer" else "operator_username"
    username = payload.get(name_claim)
    if not isinstance(username, str) or not username:
        raise _invalid()
    epoch = payload.get("epoch", 0)
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        raise _invalid()
    return Claims(
        str(token_type), username, str(payload["jti"]),
        datetime.fromtimestamp(payload["iat"], UTC), datetime.fromtimestamp(payload["exp"], UTC),
        epoch, kid,
    )


def signed_out() -> Unauthorized:
    return Unauthorized("token_revoked", "you have been signed out, please log in again")


async def is_revoked(jti: str) -> bool:
    return await RevokedToken.filter(jti=jti).exists()
