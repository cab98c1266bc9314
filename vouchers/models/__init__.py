"""Models of the vouchers app, one module per area; everything is importable from here."""

from .audit import AuditEvent
from .campaigns import Campaign, Membership
from .desk import DeskPreference, ReconcileTicket
from .ledger import ProviderOperation
from .sales import BulkSale, BulkSaleRow, Sale, SaleTemplate
from .stock import StockAlert, StockLevel, StockMonitor, StockSnapshot, StockThreshold

__all__ = [
    "AuditEvent",
    "BulkSale",
    "BulkSaleRow",
    "Campaign",
    "DeskPreference",
    "Membership",
    "ProviderOperation",
    "ReconcileTicket",
    "Sale",
    "SaleTemplate",
    "StockAlert",
    "StockLevel",
    "StockMonitor",
    "StockSnapshot",
    "StockThreshold",
]
