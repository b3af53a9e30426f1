"""TOTP rules (plain functions) and the [portal] require_totp_for_admins login rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portal.core import operators
from portal.core.auth import keys, login, second_factor, tokens, totp
from portal.core.auth.keys import KeyRing
from portal.errors import PortalError, Unauthorized

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
    """An admin with no second factor gets only an enrollment-only token (10 minutes,
    refused where an operator session is needed); a support operator signs in with the
    password; an enrolled admin needs the code."""
    keys.ensure_file(tmp_path / "signing.keys")
    ring = KeyRing.load(tmp_path / "signing.keys")
    await operators.add("adam", "adam-password-1")
    await operators.add("sue", "sue-password-12", role="support")
    now = datetime.now(UTC)
    issued, op = await login.operator_login("adam", "adam-password-1", "10.0.0.1", now, ring,
                                            7, require_totp_for_admins=True)
    assert issued.claims.type == tokens.OPERATOR_ENROLL
    assert issued.claims.expires_at - now == login.ENROLL_LIFETIME
    with pytest.raises(Unauthorized) as refused:
        tokens.decode(ring, issued.token, "operator", now)
    assert refused.value.code == "wrong_token_type"
    assert tokens.decode(ring, issued.token, "operator", now,
                         also=(tokens.OPERATOR_ENROLL,)).username == "adam"
    # Without the rule the same admin gets a session.
    full, _ = await login.operator_login("adam", "adam-password-1", "10.0.0.1", now, ring, 7)
    assert full.claims.type == "operator"
    issued, op = await login.operator_login("sue", "sue-password-12", "10.0.0.1", now, ring, 1,
                                            require_totp_for_admins=True)
    assert op.role == "support" and issued.claims.type == "operator"
    secret = await operators.enroll_totp("adam")
    with pytest.raises(Unauthorized):
        await login.operator_login("adam", "adam-password-1", "10.0.0.2", now, ring, 1,
                                   require_totp_for_admins=True)
    code = totp.code_at(secret, int(now.timestamp() // 30))
    issued, op = await login.operator_login("adam", "adam-password-1", "10.0.0.2", now, ring,
                                            1, code=code, require_totp_for_admins=True)
    assert op.username == "adam" and issued.claims.type == "operator"


async def test_an_admin_enrolls_with_the_enrollment_only_token(db: str, tmp_path):
    """The first sign-in of an admin under require_totp_for_admins: begin and confirm
    (a code from the new secret) turn two-step sign-in on and give a console session;
    the enrollment token is dead after it (epoch), and the next login needs a code."""
    keys.ensure_file(tmp_path / "signing.keys")
    ring = KeyRing.load(tmp_path / "signing.keys")
    await operators.add("adam", "adam-password-1")
    now = datetime.now(UTC)
    issued, op = await login.operator_login("adam", "adam-password-1", "10.0.0.1", now, ring,
                                            7, require_totp_for_admins=True)
    pending = await second_factor.begin(op, "", "10.0.0.1", now)
    await op.refresh_from_db()  # each request reads the operator afresh
    step = int(now.timestamp() // 30)
    with pytest.raises(PortalError) as wrong:
        await second_factor.confirm(op, totp.code_at(pending.secret, step - 5), "10.0.0.1",
                                    now, ring, 7)
    assert wrong.value.code == "invalid_code"
    session = await second_factor.confirm(op, totp.code_at(pending.secret, step), "10.0.0.1",
                                          now, ring, 7)
    assert session.claims.type == "operator"
    await op.refresh_from_db()
    assert op.totp_secret == pending.secret
    assert session.claims.epoch == op.token_epoch != issued.claims.epoch
    with pytest.raises(Unauthorized):
        await login.operator_login("adam", "adam-password-1", "10.0.0.3", now, ring, 1,
                                   require_totp_for_admins=True)
