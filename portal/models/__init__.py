"""The data model. Every table is created by a migration in portal/migrations."""

from portal.models.business import FupTier, ParentalSettings, Plan, Reseller, Subscriber
from portal.models.ledger import AuditLog, ChangeJournal, LoginFailure, RevokedToken, WalletEntry
from portal.models.radius import (
    Nas,
    RadCheck,
    RadGroupCheck,
    RadGroupReply,
    RadReply,
    RadUserGroup,
)

__all__ = [
    "AuditLog", "ChangeJournal", "FupTier", "LoginFailure", "Nas", "ParentalSettings", "Plan",
    "RadCheck", "RadGroupCheck", "RadGroupReply", "RadReply", "RadUserGroup", "Reseller",
    "RevokedToken", "Subscriber", "WalletEntry",
]
