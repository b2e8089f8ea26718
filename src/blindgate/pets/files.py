"""JSON outputs of a PET run, written atomically (``blindgate.fileio``): never half a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from blindgate.fileio import write_atomically


def write_json(path: Path, obj: Any) -> None:
    write_atomically(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


__all__ = ["write_atomically", "write_json"]
