"""Models of the vouchers app, one module per area; everything is importable from here."""

from .audit import AuditEvent
from .campaigns import Campaign, Membership
from .ledger import ProviderOperation
from .sales import BulkSale, BulkSaleRow, Sale, SaleTemplate

__all__ = [
    "AuditEvent",
    "BulkSale",
    "BulkSaleRow",
    "Campaign",
    "Membership",
    "ProviderOperation",
    "Sale",
    "SaleTemplate",
]
