"""The data model. Every table is created by a migration in portal/migrations."""

from portal.models.billing import IdempotencyKey, Invoice, InvoiceCounter, InvoiceLine, Topup
from portal.models.business import FupTier, ParentalSettings, Plan, Reseller, Subscriber
from portal.models.enforcement import EnforcementState
from portal.models.ledger import AuditLog, ChangeJournal, LoginFailure, RevokedToken, WalletEntry
from portal.models.radius import (
    Nas,
    RadCheck,
    RadGroupCheck,
    RadGroupReply,
    RadReply,
    RadUserGroup,
)
from portal.models.support import Operator, Ticket, TicketMessage
from portal.models.usage import LiveRate, UsageDaily, UsageIngest, UsageSession
from portal.models.wifi import AcsServer, WifiTask

__all__ = [
    "AuditLog", "ChangeJournal", "FupTier", "LoginFailure", "Nas", "ParentalSettings", "Plan",
    "RadCheck", "RadGroupCheck", "RadGroupReply", "RadReply", "RadUserGroup", "Reseller",
    "RevokedToken", "Subscriber", "WalletEntry",
    "IdempotencyKey", "Invoice", "InvoiceCounter", "InvoiceLine", "Topup",
    "LiveRate", "UsageDaily", "UsageIngest", "UsageSession",
    "EnforcementState",
    "AcsServer", "Operator", "Ticket", "TicketMessage", "WifiTask",
]
