"""`blindgate sample-data`: a small synthetic pair of files, so the README's PET commands run as written.

    blindgate sample-data --out data

writes ``data/wallet.csv`` (the wallet's customers: national-format Singapore phone
numbers, an email, a full name, profile columns with a few missing values, and the label
``responded``), ``data/network.csv`` (the network's view of its payers: international
phone numbers, cross-border payment behaviour, a few repeated rows) and
``data/campaign.csv`` (the wallet's next campaign list: no label, and a segment level
the training data never had). About three quarters of the wallet's customers are in the
network's file. The label depends on both sides' columns, so the joint model beats the
wallet's own. Everything is synthetic (a seeded generator): no real person's data.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from blindgate.commandline import fail
from blindgate.commandline import parser as command_parser
from blindgate.errors import EXIT_INPUT

SEGMENTS = ("student", "salaried", "self-employed", "retired")
CORRIDORS = ("SG-MY", "SG-ID", "SG-PH", "SG-CN", "SG-IN", "SG-TH")
FIRST = ("Tan", "Lim", "Lee", "Ng", "Ong", "Wong", "Goh", "Chua", "Koh", "Teo", "Raj", "Kumar", "Siti", "Nur")
GIVEN = ("Wei", "Ming", "Hui", "Jia", "Kai", "Li", "Xin", "Arun", "Priya", "Aisyah", "Farid", "Mei", "Jun")

PROG = "blindgate sample-data"


def parser() -> argparse.ArgumentParser:
    p = command_parser(PROG, __doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("data"), help="directory for the files (default: data)")
    p.add_argument("--rows", type=int, default=2000, help="the wallet's customers (default 2000)")
    p.add_argument("--seed", type=int, default=7)
    return p


def _phones(rng: np.random.Generator, count: int) -> list[str]:
    """Distinct Singapore mobile numbers (8 digits, starting 8 or 9), national form."""
    numbers = rng.choice(np.arange(81_000_000, 98_000_000), size=count, replace=False)
    return [f"{n // 10_000} {n % 10_000:04d}" for n in numbers]


def make(out: Path, rows: int, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    total = int(rows * 1.6)
    phones = _phones(rng, total)
    names = [f"{rng.choice(GIVEN)} {rng.choice(FIRST)} {i:05d}" for i in range(total)]
    age = rng.integers(18, 80, total)
    income = np.round(rng.lognormal(8.2, 0.5, total), 2)
    segment = rng.choice(len(SEGMENTS), total, p=[0.2, 0.5, 0.2, 0.1])
    sessions = rng.poisson(12, total)
    payments = rng.poisson(3 + 4 * (segment == 2), total)
    ticket = np.round(rng.lognormal(4.0, 0.6, total), 2)
    corridor = rng.choice(len(CORRIDORS), total)
    recency = rng.integers(0, 365, total)
    logit = (
        -2.2
        + 0.02 * (sessions - 12)
        + 0.3 * (segment == 1)
        + 0.45 * (payments - 4)
        - 0.008 * (recency - 180)
        + 0.6 * (corridor == 3)
    )
    responded = rng.random(total) < 1 / (1 + np.exp(-logit))
    wallet_rows = np.arange(rows)
    in_network = rng.random(total) < 0.75
    network_rows = np.flatnonzero(in_network)  # some campaign rows too are not the network's
    campaign_rows = np.arange(rows, rows + rows // 4)
    out.mkdir(parents=True, exist_ok=True)

    def wallet_row(i: int, label: bool) -> list[str]:
        missing_age = rng.random() < 0.03
        phone = phones[i] if i % 10 else f"+65 {phones[i]}"  # mostly national, some international
        level = SEGMENTS[segment[i]] if not (not label and i % 17 == 0) else "premium"  # unseen in training
        row = [phone, f"{names[i].split()[0].lower()}.{i}@example.com", names[i]]
        row += ["" if missing_age else str(age[i]), f"{income[i]:.2f}", level, str(sessions[i])]
        return [*row, "yes" if responded[i] else "no"] if label else row

    header = ["phone", "email", "full_name", "age", "monthly_income", "segment", "app_sessions_30d"]
    _write(out / "wallet.csv", [*header, "responded"], [wallet_row(i, True) for i in wallet_rows.tolist()])
    _write(out / "campaign.csv", header, [wallet_row(i, False) for i in campaign_rows.tolist()])
    network = [
        [
            f"+65{phones[i].replace(' ', '')}",
            str(payments[i]),
            f"{ticket[i]:.2f}",
            CORRIDORS[corridor[i]],
            str(recency[i]),
        ]
        for i in network_rows
    ]
    network += [list(network[k]) for k in rng.choice(len(network), 3, replace=False)]  # repeated rows
    rng.shuffle(network)
    _write(
        out / "network.csv",
        ["msisdn", "cross_border_payments_90d", "avg_ticket_usd", "top_corridor", "days_since_last"],
        network,
    )
    return {"wallet": len(wallet_rows), "network": len(network), "campaign": len(campaign_rows)}


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.rows < 50:
        return fail(PROG, "--rows must be at least 50", EXIT_INPUT)
    try:
        counts = make(args.out, args.rows, args.seed)
    except OSError as exc:
        return fail(PROG, f"cannot write {args.out} ({exc.__class__.__name__})", EXIT_INPUT)
    print(
        f"wrote {args.out / 'wallet.csv'} ({counts['wallet']} rows), {args.out / 'network.csv'} "
        f"({counts['network']} rows) and {args.out / 'campaign.csv'} ({counts['campaign']} rows): synthetic"
    )
    return 0
