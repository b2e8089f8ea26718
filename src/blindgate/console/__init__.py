"""The web console: payments, business days, settlement, privacy and PET reports, read-only."""
