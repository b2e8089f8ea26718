"""Split the UCI bank-marketing file into the wallet's and the network's CSVs.

For tests, benchmarks and first tries (the data's README suggests the split): rows get
synthetic ids (a keyed hash of the row number, so they reveal nothing), and each side
drops a different few rows so that alignment has real work to do.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
from pathlib import Path

WALLET_COLUMNS = ["age", "job", "marital", "education", "default", "balance", "housing", "loan"]
NETWORK_COLUMNS = ["contact", "day", "month", "duration", "campaign", "pdays", "previous", "poutcome"]
LABEL = "term deposit"
ID = "customer_id"


def split_bank_marketing(
    source: Path, out: Path, rows: int | None = None, drop_every: int = 50, key: bytes = b"blindgate-demo"
) -> tuple[Path, Path]:
    """Write ``out/wallet.csv`` and ``out/network.csv``; each drops every ``drop_every``-th row, offset."""
    out.mkdir(parents=True, exist_ok=True)
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        records = list(reader)[:rows]
    wallet_path, network_path = out / "wallet.csv", out / "network.csv"
    with wallet_path.open("w", newline="") as w_handle, network_path.open("w", newline="") as n_handle:
        wallet = csv.writer(w_handle)
        network = csv.writer(n_handle)
        wallet.writerow([ID, *WALLET_COLUMNS, LABEL])
        network.writerow([ID, *NETWORK_COLUMNS])
        for number, record in enumerate(records):
            identifier = hmac.new(key, str(number).encode(), hashlib.sha256).hexdigest()[:20]
            if number % drop_every != 0:
                wallet.writerow([identifier, *(record[c] for c in WALLET_COLUMNS), record[LABEL]])
            if number % drop_every != drop_every // 2:
                network.writerow([identifier, *(record[c] for c in NETWORK_COLUMNS)])
    return wallet_path, network_path
