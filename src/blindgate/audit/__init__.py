"""Privacy report, data classification, tamper-evident log, privacy scanner."""
