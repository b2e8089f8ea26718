"""Private set intersection: find shared customers without revealing the others.

Two protocols, both for semi-honest parties: ``kkrt`` (OT-extension PSI in the KKRT16
style, the fast default) and ``ecdh`` (Diffie–Hellman OPRF over ristretto255, which
also serves unbalanced sets, slow links and cardinality-only). Four modes:
``intersection`` (to the receiver), ``both``, ``join`` (aligned rows) and
``cardinality``. See ``session`` for what each party learns in each mode, and
docs/psi.md. The ``blindgate psi`` command (``commands``) runs it between two processes
over pinned-certificate TLS.
"""

from blindgate.pets.psi.errors import InputError, ParameterMismatch, PsiError
from blindgate.pets.psi.session import MODES, PROTOCOLS, VERSION, PsiResult, run_psi

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
