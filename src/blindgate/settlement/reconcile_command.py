"""`blindgate reconcile --partner ID --records FILE --settlement-dir DIR [--out FILE]`.

Compares the partner's own records (CSV, format in ``reconcile``) with the gateway's
``settlementItems_<partner>_*`` files in DIR and lists every break, as CSV on stdout or in
``--out``. Exit 0: no break; 1: breaks listed; 2: a bad file (named with its row), nothing written.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from blindgate.settlement.reconcile import (
    BREAK_COLUMNS,
    BadRecords,
    read_gateway_items,
    read_partner_records,
    reconcile,
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="blindgate reconcile",
        description="compare a partner's records with the gateway's settlement files",
    )
    parser.add_argument("--partner", required=True, help="the partner's id, as in the file names")
    parser.add_argument("--records", required=True, type=Path, help="the partner's own records (CSV)")
    parser.add_argument("--settlement-dir", required=True, type=Path, help="folder `blindgate settle` wrote")
    parser.add_argument("--out", type=Path, help="write the breaks here (CSV) instead of stdout")
    args = parser.parse_args(argv)
    item_files = sorted(args.settlement_dir.glob(f"settlementItems_{args.partner}_*.csv"))
    try:
        if not item_files:
            raise BadRecords(f"no settlementItems files for {args.partner} in {args.settlement_dir}")
        breaks = reconcile(read_gateway_items(item_files), read_partner_records(args.records))
    except BadRecords as bad:
        print(f"blindgate reconcile: {bad}", file=sys.stderr)
        return 2
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(BREAK_COLUMNS)
    writer.writerows(item.row() for item in breaks)
    if args.out:
        args.out.write_text(buffer.getvalue())
    else:
        sys.stdout.write(buffer.getvalue())
    print(json.dumps({"partner": args.partner, "breaks": len(breaks)}), file=sys.stderr)
    return 1 if breaks else 0
