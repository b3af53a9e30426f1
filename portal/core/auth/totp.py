"""The operator's second factor: RFC 6238 time-based codes (pyotp computes them).

Plain functions over plain values. A code is accepted for the current 30-second
step or one step either side (clock drift), and only for a step later than the
last one accepted (`last_step`): a code seen once, or overheard, is refused.
Recording the step is the caller's conditional UPDATE, so two logins racing with
the same code cannot both win.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

import pyotp

STEP_S = 30
DRIFT_STEPS = 1
ISSUER = "ispedge"


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    """otpauth:// URI an authenticator app reads (typed in, or as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=quote(username, safe="@._-"),
                                               issuer_name=issuer)


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * STEP_S)


def accepted_step(secret: str, code: str, last_step: int, now_s: float) -> int | None:
    """The time step `code` belongs to, if it is valid now and newer than last_step."""
    code = code.strip().replace(" ", "")
    if not secret or len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    current = int(now_s // STEP_S)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > last_step and hmac.compare_digest(code_at(secret, step), code):
            return step
    return None
