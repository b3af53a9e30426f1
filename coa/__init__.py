"""RFC 5176 Change-of-Authorization and Disconnect for subscriber sessions.

A mechanism: it takes a NAS, a session and a rate (or raw attributes) and
reports what the NAS answered. It knows nothing about plans or subscribers.
"""

from coa.client import ClientStats, CoaClient, session_attributes
from coa.profiles import (
    PROFILE_NAMES,
    AccelPppProfile,
    CiscoProfile,
    GenericProfile,
    MikrotikProfile,
    Profile,
    default_profiles,
    get_profile,
)
from coa.results import (
    COA_ACK,
    COA_NAK,
    COA_REQUEST,
    DISCONNECT_ACK,
    DISCONNECT_NAK,
    DISCONNECT_REQUEST,
    ERROR_CAUSES,
)
from coa.types import COA_PORT, SESSION_CONTEXT_NOT_FOUND, Burst, CoaResult, Nas, Rate, SessionRef

__all__ = [
    "COA_ACK",
    "COA_NAK",
    "COA_PORT",
    "COA_REQUEST",
    "DISCONNECT_ACK",
    "DISCONNECT_NAK",
    "DISCONNECT_REQUEST",
    "ERROR_CAUSES",
    "PROFILE_NAMES",
    "SESSION_CONTEXT_NOT_FOUND",
    "AccelPppProfile",
    "Burst",
    "CiscoProfile",
    "ClientStats",
    "CoaClient",
    "CoaResult",
    "GenericProfile",
    "MikrotikProfile",
    "Nas",
    "Profile",
    "Rate",
    "SessionRef",
    "default_profiles",
    "get_profile",
    "session_attributes",
]
