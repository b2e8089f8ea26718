"""The gateway service: routing, payments, FX, ledger, settlement, notifications, storage."""
