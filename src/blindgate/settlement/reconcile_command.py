"""`blindgate reconcile --partner ID --records FILE --settlement-dir DIR [--out FILE]`.

Compares the partner's own records (CSV, format in ``reconcile``) with the gateway's
``settlementItems_<partner>_*`` files in DIR and lists every break, as CSV on stdout or in
``--out``. Exit 0: no break; 1: breaks listed; 2: a bad file (named with its row), nothing written
(`blindgate.commandline.EXIT_CODES`).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from blindgate.commandline import fail, parser
from blindgate.errors import EXIT_FOUND, EXIT_INPUT, EXIT_OK
from blindgate.settlement.reconcile import (
    BREAK_COLUMNS,
    BadRecords,
    read_gateway_items,
    read_partner_records,
    reconcile,
)

PROG = "blindgate reconcile"


def main(argv: list[str]) -> int:
    reconciling = parser(PROG, "compare a partner's records with the gateway's settlement files")
    reconciling.add_argument("--partner", required=True, help="the partner's id, as in the file names")
    reconciling.add_argument("--records", required=True, type=Path, help="the partner's own records (CSV)")
    reconciling.add_argument(
        "--settlement-dir", required=True, type=Path, help="folder `blindgate settle` wrote"
    )
    reconciling.add_argument("--out", type=Path, help="write the breaks here (CSV) instead of stdout")
    args = reconciling.parse_args(argv)
    item_files = sorted(args.settlement_dir.glob(f"settlementItems_{args.partner}_*.csv"))
    try:
        if not item_files:
            raise BadRecords(f"no settlementItems files for {args.partner} in {args.settlement_dir}")
        breaks = reconcile(read_gateway_items(item_files), read_partner_records(args.records))
    except BadRecords as bad:
        return fail(PROG, bad, EXIT_INPUT)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(BREAK_COLUMNS)
    writer.writerows(item.row() for item in breaks)
    if args.out:
        try:
            args.out.write_text(buffer.getvalue())
        except OSError as failure:
            return fail(PROG, f"cannot write --out ({failure.__class__.__name__})", EXIT_INPUT)
    else:
        sys.stdout.write(buffer.getvalue())
    print(json.dumps({"partner": args.partner, "breaks": len(breaks)}), file=sys.stderr)
    return EXIT_FOUND if breaks else EXIT_OK
