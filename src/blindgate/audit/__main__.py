"""``python -m blindgate.audit <directory> <population.csv>``: the privacy check, as JSON.

Scans every file under the directory for every value in the CSV (every column is a kind
of personal value) and prints the scanner's report; exit status 1 when anything is found.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from blindgate.audit.scanner import read_values_csv, scan_directory


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not Path(argv[0]).is_dir() or not Path(argv[1]).is_file():
        print("usage: python -m blindgate.audit <directory> <population.csv>", file=sys.stderr)
        return 2
    report = scan_directory(Path(argv[0]), read_values_csv(Path(argv[1])))
    print(json.dumps(report.to_json(), indent=2))
    return 1 if report.found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
