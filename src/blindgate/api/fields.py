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

from blindgate.crypto.sealing import PREFIX

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


@cache
def _ancestors() -> frozenset[str]:
    """Every name a personal field lies under (``order``, ``order.buyer``...): the only subtrees
    `personal_in_clear` needs to enter."""
    exact, prefixes = _personal()

    def above(name: str, inclusive: bool) -> list[str]:
        parts = name.split(".")
        return [".".join(parts[:i]) for i in range(1, len(parts) + inclusive)]

    return frozenset(
        [a for name in exact for a in above(name, False)]
        + [a for prefix in prefixes for a in above(prefix.rstrip("."), True)]
    )


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
    """The name of the first personal field ``message`` carries in clear — a value without an
    envelope's prefix — or None. It enters only the subtrees a personal field lies under, and
    checks the prefix, not the whole envelope (the recipient's agent opens it, or refuses it):
    it runs on every request the gateway gets, and costs a few microseconds."""
    return _clear_personal(message, "")


def _clear_personal(value: Any, name: str) -> str | None:
    if isinstance(value, dict):
        for key, item in value.items():
            below = f"{name}.{key}" if name else str(key)
            if below in _ancestors() or is_personal(below):
                found = _clear_personal(item, below)
                if found is not None:
                    return found
        return None
    if isinstance(value, list):
        return next((f for f in (_clear_personal(item, name) for item in value) if f is not None), None)
    if value is not None and is_personal(name) and not (isinstance(value, str) and value.startswith(_SEALED)):
        return name
    return None


_SEALED = f"{PREFIX}."
