"""The data model. Every table is created by a migration in portal/migrations."""

from portal.store.models.billing import (
    IdempotencyKey,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    PlanChange,
    PrepaidCycle,
    Topup,
)
from portal.store.models.business import FupTier, ParentalSettings, Plan, Reseller, Subscriber
from portal.store.models.enforcement import EnforcementState
from portal.store.models.ledger import (
    AuditLog,
    ChangeJournal,
    LoginFailure,
    RevokedToken,
    WalletEntry,
)
from portal.store.models.radius import (
    Nas,
    RadCheck,
    RadGroupCheck,
    RadGroupReply,
    RadReply,
    RadUserGroup,
)
from portal.store.models.support import Operator, Ticket, TicketMessage
from portal.store.models.usage import LiveRate, UsageDaily, UsageIngest, UsageSession
from portal.store.models.wifi import AcsServer, WifiTask

__all__ = [
    "AuditLog", "ChangeJournal", "FupTier", "LoginFailure", "Nas", "ParentalSettings", "Plan",
    "RadCheck", "RadGroupCheck", "RadGroupReply", "RadReply", "RadUserGroup", "Reseller",
    "RevokedToken", "Subscriber", "WalletEntry",
    "IdempotencyKey", "Invoice", "InvoiceCounter", "InvoiceLine", "PlanChange", "PrepaidCycle",
    "Topup",
    "LiveRate", "UsageDaily", "UsageIngest", "UsageSession",
    "EnforcementState",
    "AcsServer", "Operator", "Ticket", "TicketMessage", "WifiTask",
]
