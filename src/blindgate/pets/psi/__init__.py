"""Private set intersection: find shared customers without revealing the others.

Two protocols, both for semi-honest parties: ``kkrt`` (OT-extension PSI in the KKRT16
style, the fast default) and ``ecdh`` (Diffie–Hellman OPRF over ristretto255, which
also serves unbalanced sets and slow links). Four modes, each with either protocol:
``intersection`` (to the receiver), ``both``, ``join`` (aligned rows) and
``cardinality`` (KKRT's: ``opprf``, ``permute_share`` and ``kkrt_cardinality``). See
``session`` for what each party learns in each mode, and docs/psi.md. The ``blindgate
psi`` command (``commands``) runs it between two processes over pinned-certificate TLS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blindgate.pets.psi.errors import InputError, ParameterMismatch, PsiError

if TYPE_CHECKING:
    from blindgate.pets.psi.session import MODES, PROTOCOLS, VERSION, PsiResult, run_psi

_FROM_SESSION = {"MODES", "PROTOCOLS", "VERSION", "PsiResult", "run_psi"}


def __getattr__(name: str) -> Any:
    """The session's names, imported on first use: ECDH's worker processes import
    ``blindgate.pets.psi.work`` and should not pay for numpy and TLS on the way."""
    if name in _FROM_SESSION:
        from blindgate.pets.psi import session

        return getattr(session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MODES",
    "PROTOCOLS",
    "VERSION",
    "InputError",
    "ParameterMismatch",
    "PsiError",
    "PsiResult",
    "run_psi",
]
