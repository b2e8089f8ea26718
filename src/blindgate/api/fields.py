"""How the payment path names a message's fields, and which of them are personal.

A field's name is its dotted path without list positions (``order.goods.goodsName``).
`personal_fields.json`, published with the wire contract, names the payer's personal data:
it travels only sealed between the two partners of a payment. The gateway refuses a request
that carries such a field in clear (`personal_in_clear`), whatever a partner's field policy
says, and an agent refuses a field policy that would send one in clear — defence in depth
against a misconfigured partner, beside the agent's rule that seals every field its policy
does not name clear.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from blindgate.crypto.sealing import is_sealed

FORMAT = "blindgate-personal-fields/1"


def leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf of a JSON value with its path (list positions included as strings)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, str(index)))
    else:
        yield path, value


def field_name(path: tuple[str, ...]) -> str:
    """A leaf's name: its path without list positions."""
    return ".".join(part for part in path if not part.isdigit())


@cache
def _personal() -> tuple[frozenset[str], tuple[str, ...]]:
    data = json.loads(resources.files("blindgate.api").joinpath("personal_fields.json").read_text())
    assert data["format"] == FORMAT
    names = [str(name) for name in data["personal"]]
    exact = frozenset(n for n in names if not n.endswith(".*"))
    return exact, tuple(n[:-1] for n in names if n.endswith(".*"))


def is_personal(name: str) -> bool:
    exact, prefixes = _personal()
    return name in exact or name.startswith(prefixes)


def covers_personal(name: str) -> bool:
    """Whether a field-policy entry (``a.b`` or ``a.b.*``) would name a personal field clear."""
    exact, prefixes = _personal()
    if not name.endswith(".*"):
        return is_personal(name)
    under = name[:-1]  # "a.b."
    return (
        under.startswith(prefixes)
        or any(p.startswith(under) for p in prefixes)
        or any(e.startswith(under) for e in exact)
    )


def personal_in_clear(message: dict[str, Any]) -> str | None:
    """The name of the first personal field ``message`` carries in clear, or None."""
    for path, value in leaves(message):
        if value is not None and not is_sealed(value) and is_personal(field_name(path)):
            return field_name(path)
    return None
