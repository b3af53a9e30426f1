"""Turning a NAS's answer (or its silence) into a CoaResult."""

from __future__ import annotations

from coa.types import SESSION_CONTEXT_NOT_FOUND, CoaResult

DISCONNECT_REQUEST, DISCONNECT_ACK, DISCONNECT_NAK = 40, 41, 42
COA_REQUEST, COA_ACK, COA_NAK = 43, 44, 45

CODE_NAMES = {
    DISCONNECT_REQUEST: "Disconnect-Request",
    DISCONNECT_ACK: "Disconnect-ACK",
    DISCONNECT_NAK: "Disconnect-NAK",
    COA_REQUEST: "CoA-Request",
    COA_ACK: "CoA-ACK",
    COA_NAK: "CoA-NAK",
}
ANSWERS = {COA_REQUEST: (COA_ACK, COA_NAK), DISCONNECT_REQUEST: (DISCONNECT_ACK, DISCONNECT_NAK)}

# RFC 5176 section 3.5.
ERROR_CAUSES = {
    201: "Residual-Session-Context-Removed",
    202: "Invalid-EAP-Packet",
    401: "Unsupported-Attribute",
    402: "Missing-Attribute",
    403: "NAS-Identification-Mismatch",
    404: "Invalid-Request",
    405: "Unsupported-Service",
    406: "Unsupported-Extension",
    407: "Invalid-Attribute-Value",
    501: "Administratively-Prohibited",
    502: "Request-Not-Routable",
    503: "Session-Context-Not-Found",
    504: "Session-Context-Not-Removable",
    505: "Other-Proxy-Processing-Error",
    506: "Resources-Unavailable",
    507: "Request-Initiated",
    508: "Multiple-Session-Selection-Unsupported",
}
# Causes that describe a passing condition on the NAS or a proxy: the same
# request may succeed later. Everything else (bad attributes, wrong NAS,
# prohibited, session gone) fails the same way again.
RETRYABLE_CAUSES = frozenset({502, 505, 506})


def error_cause_name(cause: int) -> str:
    return ERROR_CAUSES.get(cause, "unknown Error-Cause")


def answered(
    code: int, error_cause: int | None, reply_message: str | None, rtt_ms: float
) -> CoaResult:
    name = CODE_NAMES.get(code, f"code {code}")
    if code in (COA_ACK, DISCONNECT_ACK):
        return CoaResult(True, code, None, name, False, rtt_ms)
    if error_cause is None:
        # A bare NAK says nothing about why; treat it like a busy NAS so the
        # caller's backoff (not an immediate loop) decides.
        message, retryable = f"{name} without Error-Cause", True
    else:
        message = f"{name}: {error_cause_name(error_cause)} ({error_cause})"
        retryable = error_cause in RETRYABLE_CAUSES
        if error_cause == SESSION_CONTEXT_NOT_FOUND:
            message += ": the session is gone"
    if reply_message:
        message += f" [{reply_message}]"
    return CoaResult(False, code, error_cause, message, retryable, rtt_ms)


def no_answer(destination: str, attempts: int, bad_authenticator: int, rtt_ms: float) -> CoaResult:
    message = f"no answer from {destination} after {attempts} attempt(s)"
    if bad_authenticator:
        message += (
            f"; {bad_authenticator} answer(s) failed authenticator verification"
            " (wrong shared secret?)"
        )
    return CoaResult(False, None, None, message, True, rtt_ms)
