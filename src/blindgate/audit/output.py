"""How an audit command hands its report over: JSON on stdout, and to ``--out`` when given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from blindgate.commandline import fail
from blindgate.errors import EXIT_INPUT
from blindgate.fileio import write_atomically


def emit(prog: str, report: dict[str, Any], out: Path | None) -> int | None:
    """Write ``report`` to ``out`` (at once) and print it; an exit status if ``out`` cannot be written."""
    text = json.dumps(report, indent=2)
    if out is not None:
        try:
            write_atomically(out, text + "\n")
        except OSError as exc:
            return fail(prog, f"cannot write {out} ({type(exc).__name__})", EXIT_INPUT)
    print(text)
    return None
