"""Clearing and settlement: daily batches per partner per currency, the Alipay+-style files,
and reconciliation of a partner's own records against them. See docs/ledger.md."""

from blindgate.settlement.batches import Batch, settle, settle_day
from blindgate.settlement.errors import BadRecords, SettlementError
from blindgate.settlement.files import write_settlement_files
from blindgate.settlement.reconcile import Break, reconcile

__all__ = [
    "BadRecords",
    "Batch",
    "Break",
    "SettlementError",
    "reconcile",
    "settle",
    "settle_day",
    "write_settlement_files",
]
