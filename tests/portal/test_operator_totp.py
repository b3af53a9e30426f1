"""TOTP rules (plain functions) and the [portal] require_totp_for_admins login rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portal.core import operators
from portal.core.auth import keys, login, totp
from portal.core.auth.keys import KeyRing
from portal.errors import Forbidden, Unauthorized

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_800_000_000.0
STEP = int(NOW // 30)


def test_a_code_is_accepted_once_within_one_step_of_drift():
    assert totp.accepted_step(SECRET, totp.code_at(SECRET, STEP), 0, NOW) == STEP
    assert totp.accepted_step(SECRET, totp.code_at(SECRET, STEP - 1), 0, NOW) == STEP - 1
    assert totp.accepted_step(SECRET, totp.code_at(SECRET, STEP + 1), 0, NOW) == STEP + 1
    assert totp.accepted_step(SECRET, totp.code_at(SECRET, STEP - 2), 0, NOW) is None
    # Used already (or a newer one was): refused.
    assert totp.accepted_step(SECRET, totp.code_at(SECRET, STEP), STEP, NOW) is None
    assert totp.accepted_step(SECRET, totp.code_at(SECRET, STEP - 1), STEP, NOW) is None
    assert totp.accepted_step(SECRET, " ".join(totp.code_at(SECRET, STEP)[i:i + 3]
                                               for i in (0, 3)), 0, NOW) == STEP


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 5"])
def test_malformed_codes_are_refused(code: str):
    assert totp.accepted_step(SECRET, code, 0, NOW) is None
    assert totp.accepted_step("", "123456", 0, NOW) is None


def test_the_uri_names_the_operator():
    uri = totp.provisioning_uri(SECRET, "olga@isp")
    assert uri.startswith("otpauth://totp/") and "olga%40isp" in uri and "issuer=ispedge" in uri


async def test_admins_need_totp_when_the_config_requires_it(db: str, tmp_path):
    keys.ensure_file(tmp_path / "signing.keys")
    ring = KeyRing.load(tmp_path / "signing.keys")
    await operators.add("adam", "adam-password-1")
    await operators.add("sue", "sue-password-12", role="support")
    now = datetime.now(UTC)
    with pytest.raises(Forbidden) as refused:
        await login.operator_login("adam", "adam-password-1", "10.0.0.1", now, ring, 1,
                                   require_totp_for_admins=True)
    assert refused.value.code == "totp_required"
    issued, op = await login.operator_login("sue", "sue-password-12", "10.0.0.1", now, ring, 1,
                                            require_totp_for_admins=True)
    assert op.role == "support" and issued.token
    secret = await operators.enroll_totp("adam")
    with pytest.raises(Unauthorized):
        await login.operator_login("adam", "adam-password-1", "10.0.0.2", now, ring, 1,
                                   require_totp_for_admins=True)
    code = totp.code_at(secret, int(now.timestamp() // 30))
    _, op = await login.operator_login("adam", "adam-password-1", "10.0.0.2", now, ring, 1,
                                       code=code, require_totp_for_admins=True)
    assert op.username == "adam"
