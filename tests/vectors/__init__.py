"""Published test vectors and checked-in golden values, as data files behind one loader.

Each ``<name>.json`` here says where it comes from in its ``source`` field: an RFC's
appendix (copied as published: hex strings, the RFC's own field names where it has them),
or, for ``golden-*``, a value this project made once with a fixed test key and must keep
opening, verifying or reproducing byte for byte (docs/crypto.md). The keys in the golden
files are test keys, published here and used nowhere else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parent


def load(name: str) -> dict[str, Any]:
    """The vector file ``<name>.json``, parsed."""
    data: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))
    assert data.get("source"), f"{name}.json says nowhere where it comes from"
    return data


def unhex(value: str) -> bytes:
    return bytes.fromhex(value)
