"""Models of the vouchers app, one module per area; everything is importable from here."""

from .audit import AuditEvent
from .campaigns import Campaign, Membership
from .desk import ReconcileTicket
from .ledger import ProviderOperation

__all__ = ["AuditEvent", "Campaign", "Membership", "ProviderOperation", "ReconcileTicket"]
