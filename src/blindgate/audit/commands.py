"""``blindgate audit <check>``: the operator's and a regulator's checks of what the gateway holds.

    blindgate audit privacy DIR VALUES.csv [--out report.json]
        scan every file under DIR (the gateway's folder: database, logs, outbox) for every value
        in VALUES.csv (one column per kind of personal value; the demo's ``population.csv``)
        in clear, case variants, hex, base64 and SHA-256 hex (`blindgate.audit.scanner`).
        Prints the report as JSON; exit 1 when anything is found, 2 for bad arguments.

    blindgate audit linkage --db URL --network network.json --payers PAYERS.csv
        how far the store lets the operator follow one payer (`blindgate.audit.linkage`): pairs of
        a payer's payments that share a stored identifier, within a wallet's business day and
        across days; PAYERS.csv (columns payment_id, payer) is the ground truth the operator
        lacks. Exit 1 when any pair is linked across days.

Each check is a module with ``main(argv) -> int`` named in :data:`CHECKS`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from blindgate.audit.output import emit
from blindgate.audit.scanner import read_values_csv, scan_directory
from blindgate.commandline import fail
from blindgate.commandline import parser as command_parser
from blindgate.errors import EXIT_INPUT, EXIT_OK

PRIVACY = "blindgate audit privacy"

# check name -> (module with main(argv), one-line help)
CHECKS: dict[str, tuple[str, str]] = {
    "privacy": ("blindgate.audit.commands", "scan the gateway's files for every partner-held personal value"),
    "linkage": ("blindgate.audit.linkage", "pairs of one payer's payments the gateway's store links"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in CHECKS:
        width = max(map(len, CHECKS))
        lines = ["usage: blindgate audit <check> [options]", "", "checks:"]
        lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in CHECKS.items()]
        known = not argv or argv[0] in {"-h", "--help"}
        if not known:
            return fail("blindgate audit", f"unknown check {argv[0]!r}\n" + "\n".join(lines), EXIT_INPUT)
        print("\n".join(lines))
        return EXIT_OK
    module = CHECKS[argv[0]][0]
    if module == __name__:
        return privacy(argv[1:])
    result: int = importlib.import_module(module).main(argv[1:])
    return result


def privacy(argv: list[str]) -> int:
    parser = command_parser(PRIVACY, CHECKS["privacy"][1])
    parser.add_argument("directory", type=Path, help="the gateway's folder (everything it wrote)")
    parser.add_argument("values", type=Path, help="CSV of personal values, one column per kind")
    parser.add_argument("--out", type=Path, help="also write the report (JSON) here")
    args = parser.parse_args(argv)
    if not args.directory.is_dir() or not args.values.is_file():
        return fail(PRIVACY, "DIR must be a directory and VALUES.csv a file", EXIT_INPUT)
    try:
        values = read_values_csv(args.values)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return fail(PRIVACY, f"cannot read {args.values} ({type(exc).__name__})", EXIT_INPUT)
    report = scan_directory(args.directory, values)
    failed = emit(PRIVACY, report.to_json(), args.out)
    if failed is not None:
        return failed
    return 1 if report.found else 0
