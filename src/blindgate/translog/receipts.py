"""Receipt files: a data-use receipt with the proof that the log holds it, verifiable offline.

After a PSI, training or prediction run the parties sign one receipt body each
(`entries.signature_for`), one of them adds the entry to the log, and each writes beside
its outputs the *receipt file*::

    {"format": "blindgate-receipt/1", "entry": <the entry>, "index": i,
     "head": <signed tree head>, "proof": [<b64url hashes>]}

A run given no log writes the same file with ``index``, ``head`` and ``proof`` null (an
*unlogged* receipt: both signatures, no inclusion yet); ``blindgate log append --log URL
RECEIPT`` adds its entry later and fills them in.

`verify_receipt` needs only the log's public key (and, optionally, a tree head the reader
trusts, e.g. one it saved or that a witness cosigned): it checks every party's signature
over the canonical body, the log's signature on the head, and the inclusion proof. Given
no log key it checks the signatures alone, and says so (``Verified.logged``). The reader
may pin the identity key it expects for a party (``identities``): a receipt whose body
names another key for that party is refused, however well it is signed. A few
milliseconds; no network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.crypto.encoding import b64url_decode, b64url_encode
from blindgate.translog import merkle
from blindgate.translog.entries import DATA_USE_RECEIPT, Entry
from blindgate.translog.errors import InvalidProof, MalformedEntry
from blindgate.translog.heads import SignedHead

RECEIPT_FORMAT: Final = "blindgate-receipt/1"
MAX_PROOF: Final = 64


def receipt_file(entry: Entry, index: int, head: SignedHead, proof: list[bytes]) -> dict[str, Any]:
    return {
        "format": RECEIPT_FORMAT,
        "entry": entry.to_json(),
        "index": index,
        "head": head.to_json(),
        "proof": [b64url_encode(item) for item in proof],
    }


def unlogged_receipt_file(entry: Entry) -> dict[str, Any]:
    """A receipt file for a run given no log: the signed entry, no inclusion proof (yet)."""
    return {"format": RECEIPT_FORMAT, "entry": entry.to_json(), "index": None, "head": None, "proof": None}


@dataclass(frozen=True)
class Verified:
    """A receipt that passed: its entry, and whether its inclusion in the log was proven."""

    entry: Entry
    logged: bool


def verify_receipt(
    document: Any,
    log_key: ed25519.Ed25519PublicKey | None,
    trusted_head: SignedHead | None = None,
    identities: Callable[[str], ed25519.Ed25519PublicKey | None] | None = None,
) -> Verified:
    """Check a receipt file; returns what passed, or raises a `TranslogError`.

    With ``trusted_head``, the receipt's head must be that very tree (same size and root);
    a receipt proven under an older head is checked against a newer one with
    ``blindgate log audit``, which needs the log. With a ``log_key``, the receipt must be
    in the log; without one, only the parties' signatures are checked.
    """
    if not isinstance(document, dict) or set(document) != {"format", "entry", "index", "head", "proof"}:
        raise MalformedEntry("not a receipt file")
    if document["format"] != RECEIPT_FORMAT:
        raise MalformedEntry("not a blindgate receipt file")
    entry = Entry.from_json(document["entry"])
    if entry.type != DATA_USE_RECEIPT:
        raise MalformedEntry("the file's entry is not a data-use receipt")
    entry.check_signatures(identities)
    if document["head"] is None:
        if document["index"] is not None or document["proof"] is not None:
            raise MalformedEntry("an unlogged receipt has neither index nor proof")
        if log_key is not None or trusted_head is not None:
            raise InvalidProof(
                "the receipt is not in a log (no inclusion proof): add it with blindgate log append"
            )
        return Verified(entry, logged=False)
    if log_key is None:
        raise MalformedEntry("the receipt claims a place in a log: give the log's public key to check it")
    head = SignedHead.from_json(document["head"])
    head.verify(log_key)
    if trusted_head is not None and not head.same_tree(trusted_head):
        raise InvalidProof("the receipt is proven under another tree head than the one given")
    index, proof = document["index"], document["proof"]
    if type(index) is not int or not isinstance(proof, list) or len(proof) > MAX_PROOF:
        raise MalformedEntry("a receipt's index is an integer and its proof a short list")
    try:
        hashes = [b64url_decode(item) for item in proof]
    except (ValueError, TypeError) as exc:
        raise MalformedEntry("a receipt's proof is base64url hashes") from exc
    merkle.verify_inclusion(index, head.size, entry.leaf_hash(), hashes, head.root)
    return Verified(entry, logged=True)
