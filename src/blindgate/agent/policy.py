"""The field policy (a data file, not code) and sealing a message's fields by it.

`FieldPolicy` reads a JSON file (default: `field_policy.json` beside this module) naming
the fields that travel in clear; every other leaf of a message is sealed — so a field the
policy does not know is sealed, never leaked. A leaf's name is its dotted path without list
positions (``order.buyer.buyerEmail``); the HPKE associated data binds the full path with
positions (``order.goods.0.goodsName``) and the payment's context id, so a sealed value
cannot be moved to another field or another payment.

A sealed leaf holds the JSON text of the value it replaces, so numbers and booleans come
back as they were. All the leaves of one message share one HPKE encapsulation
(`blindgate.crypto.seal_fields`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from blindgate.api.fields import covers_personal, leaves
from blindgate.api.fields import field_name as policy_name
from blindgate.api.results import ApiError
from blindgate.crypto.errors import SealedValueInvalid, UnknownKey
from blindgate.crypto.pseudonyms import pseudonym
from blindgate.crypto.sealing import (
    MAX_FIELDS_PER_CONTEXT,
    OpeningKeys,
    RecipientKey,
    is_sealed,
    open_field,
    parse_envelope,
    seal_fields,
    sibling_encs,
)

FORMAT = "blindgate-field-policy/1"
DIGEST_PURPOSE = "request-fingerprint"


@dataclass(frozen=True)
class FieldPolicy:
    exact: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def load(cls, path: Path | None = None) -> FieldPolicy:
        text = (
            Path(path).read_text()
            if path is not None
            else resources.files("blindgate.agent").joinpath("field_policy.json").read_text()
        )
        data = json.loads(text)
        if data.get("format") != FORMAT or not isinstance(data.get("clear"), list):
            raise ValueError(f"a field policy file is {FORMAT} with a list 'clear'")
        names = [str(name) for name in data["clear"]]
        if any(covers_personal(name) for name in names):
            raise ValueError("a field policy may not name a personal field clear (api/personal_fields.json)")
        return cls(
            frozenset(n for n in names if not n.endswith(".*")),
            tuple(n[:-1] for n in names if n.endswith(".*")),
        )

    def is_clear(self, name: str) -> bool:
        return name in self.exact or name.startswith(self.prefixes)

    def clear_part(self, message: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``message`` without the leaves this policy does not name clear."""

        def keep(value: Any, path: tuple[str, ...]) -> Any:
            if isinstance(value, dict):
                items = [(k, v, (*path, k)) for k, v in value.items()]
                return {k: keep(v, at) for k, v, at in items if _holds_clear(self, v, at)}
            if isinstance(value, list):
                items_ = [(v, (*path, str(i))) for i, v in enumerate(value)]
                return [keep(v, at) for v, at in items_ if _holds_clear(self, v, at)]
            return value

        kept: dict[str, Any] = keep(message, ())
        return kept


def _holds_clear(policy: FieldPolicy, value: Any, path: tuple[str, ...]) -> bool:
    return any(policy.is_clear(policy_name((*path, *below))) for below, _ in leaves(value))


def _at(document: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def _replace(document: Any, path: tuple[str, ...], value: Any) -> None:
    target = document
    for part in path[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(path[-1])] = value
    else:
        target[path[-1]] = value


def seal_message(
    message: dict[str, Any], policy: FieldPolicy, recipient: RecipientKey, context_id: str
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A copy of ``message`` with every non-clear leaf sealed to ``recipient``, and the values sealed."""
    sealed_copy = json.loads(json.dumps(message))
    paths = {
        ".".join(path): path
        for path, value in leaves(message)
        if path and value is not None and not policy.is_clear(policy_name(path)) and not is_sealed(value)
    }
    values = {name: json.dumps(_at(message, path)).encode() for name, path in paths.items()}
    if len(values) > MAX_FIELDS_PER_CONTEXT:
        raise ApiError("PARAM_ILLEGAL", "the request has too many fields")
    if values:
        padded = {name: padded_to_class(value) for name, value in values.items()}
        for name, envelope in seal_fields(padded, recipient, context_id).items():
            _replace(sealed_copy, paths[name], envelope)
    return sealed_copy, values


# An envelope shows the length of what it seals: each value is padded to the next of these
# lengths (bytes of its JSON text), so an envelope tells only the class. A phone number, an
# email address, a device id and a payment code all fall in the first two.
LENGTH_CLASSES = (32, 64, 128, 256, 512, 1024, 4096, 16384)


def padded_to_class(value: bytes) -> bytes:
    """JSON text padded with spaces to its length class (JSON allows trailing whitespace, so the
    recipient's `json.loads` reads the same value; a value longer than every class is unpadded)."""
    size = next((size for size in LENGTH_CLASSES if size >= len(value)), len(value))
    return value + b" " * (size - len(value))


def sealed_digest(key: bytes, request_id: str, values: dict[str, bytes]) -> str:
    """The keyed PRF of what was sealed for one payment request: lets the gateway tell a retry
    from a changed request, blind, and is fresh per request (no two payments share one)."""
    canonical = json.dumps([request_id, {name: value.decode() for name, value in sorted(values.items())}])
    return pseudonym(key, DIGEST_PURPOSE, canonical)


def without_sealed(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``message`` without its sealed values (for a caller they may not be opened for)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not is_sealed(v)}
        if isinstance(value, list):
            return [strip(v) for v in value if not is_sealed(v)]
        return value

    stripped: dict[str, Any] = strip(message)
    return stripped


def open_message(
    message: dict[str, Any], keys: OpeningKeys, party_id: str, context_id: str
) -> dict[str, Any]:
    """A copy of ``message`` with every leaf sealed to ``party_id`` opened.

    Raises `ApiError`: KEY_NOT_FOUND for an unknown key version, PARAM_ILLEGAL for a value
    that does not open (tampered, moved to another field or payment) — naming no value.
    """
    opened = json.loads(json.dumps(message))
    found = list(leaves(message))
    siblings = sibling_encs(value for _, value in found)  # a hybrid context's shared enc
    for path, value in found:
        if not is_sealed(value) or parse_envelope(value).kid != party_id:
            continue
        try:
            clear = json.loads(open_field(value, keys, ".".join(path), context_id, siblings))
        except UnknownKey:
            raise ApiError(
                "KEY_NOT_FOUND", "a sealed field names a key version this party does not hold"
            ) from None
        except (SealedValueInvalid, ValueError):
            raise ApiError("PARAM_ILLEGAL", f"the sealed field {policy_name(path)} does not open") from None
        _replace(opened, path, clear)
    return opened
