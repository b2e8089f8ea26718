"""Keys an agent uses only once the partners' transparency log vouches for them.

The operator writes the network file, and with it every key an agent is told to use. An agent
with a transparency log configured (its file's ``transparency`` section) trusts none of them on
the file's word:

- **a peer's sealing key** is sealed to only once the log shows it in that peer's key bundle
  (`blindgate.agent.app.verified`; then the newest key the peer publishes there);
- **the gateway's signing keys** verify a request or an answer only once the log shows them in
  the operator's key bundle, signed by the operator's identity key that the partners pinned,
  inside the bundle's validity period and not revoked (`GatewayKeys`). A gateway key that the
  operator never published, that it revoked (a stolen key), or whose bundle has expired verifies
  nothing here: the gateway's request is refused KEY_NOT_FOUND, and while the log vouches for no
  key of the gateway the agent sends it nothing (its own partner's request is answered
  KEY_NOT_FOUND).

A verdict is the verifier's (`blindgate.translog.LogVerifier`): cached per key version and asked
again after its recheck period, so a revocation takes effect within that period. A refusal is not
asked again for `REFUSAL_HOLD_S`, so that a refused key cannot make every request a round trip
to the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.api.network import Network
from blindgate.crypto.errors import UnknownKey
from blindgate.crypto.sealing import RecipientKey
from blindgate.crypto.signatures import ED25519, RSA256, VerifyingKey
from blindgate.translog.errors import TranslogError
from blindgate.translog.verifier import VerifiedKey

log = logging.getLogger("blindgate.agent")

REFUSAL_HOLD_S = 30.0


class PartnersLog(Protocol):
    """The partners' transparency log as an agent asks it (`blindgate.translog.LogVerifier`)."""

    async def anewest_sealing_key(self, key: RecipientKey) -> RecipientKey: ...

    async def arequire_signing_key(
        self, partner: str, algorithm: str, version: int, public_key: bytes
    ) -> VerifiedKey: ...

    def cached(
        self, partner: str, kind: str, suite: str, version: int, public_key: bytes
    ) -> VerifiedKey | None: ...

    def verified_keys(self) -> Sequence[VerifiedKey]: ...


class GatewayKeys:
    """The gateway's verifying keys as this agent accepts them (module docstring).

    `check` (async, before verifying anything the gateway signed) has the log vouch for every key
    version the network file lists for the gateway; `verifying_key` (the lookup of a signature
    check) gives only those it vouched for. Without a log, the network file's keys as they are.
    """

    def __init__(
        self, network: Network, partners_log: PartnersLog | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.gateway = network.gateway
        self.partners_log, self._clock = partners_log, clock
        keys = network.gateway.keys
        # As bundles carry them, made once: each request asks the log's cache with them.
        self._listed = {(ED25519, v): public_bytes(key) for v, key in keys.ed25519_keys.items()}
        self._listed |= {(RSA256, v): public_bytes(key) for v, key in keys.rsa_keys.items()}
        self._refused: dict[tuple[str, int], float] = {}  # key version -> when the log refused it

    async def check(self) -> None:
        if self.partners_log is None:
            return
        for algorithm, version in self._listed:
            if self._vouched(algorithm, version) or self._recently_refused(algorithm, version):
                continue
            try:
                await self.partners_log.arequire_signing_key(
                    self.gateway.party_id, algorithm, version, self._listed[(algorithm, version)]
                )
            except TranslogError as refusal:
                self._refused[(algorithm, version)] = self._clock()
                log.error(
                    "gateway signing key refused",
                    extra={"algorithm": algorithm, "version": version, "reason": str(refusal)},
                )

    def any_vouched(self) -> bool:
        """Whether some key of the gateway may verify (before `check`: only without a log)."""
        if self.partners_log is None:
            return True
        return any(self._vouched(algorithm, version) for algorithm, version in self._listed)

    def verifying_key(self, algorithm: str, version: int) -> VerifyingKey:
        """The gateway's key for a ``Signature`` header; raises `UnknownKey` for one the log has
        not vouched for (or the network file does not list)."""
        key = self.gateway.keys.verifying_key(algorithm, version)
        if self.partners_log is not None and not self._vouched(algorithm, version):
            raise UnknownKey("the gateway's signing key is not vouched for by the partners' log")
        return key

    def _vouched(self, algorithm: str, version: int) -> bool:
        assert self.partners_log is not None
        public = self._listed[(algorithm, version)]
        found = self.partners_log.cached(self.gateway.party_id, algorithm, algorithm, version, public)
        return found is not None

    def _recently_refused(self, algorithm: str, version: int) -> bool:
        when = self._refused.get((algorithm, version))
        return when is not None and self._clock() - when < REFUSAL_HOLD_S


def public_bytes(key: VerifyingKey) -> bytes:
    """A signing key as key bundles carry it: Ed25519 raw, RSA as DER SubjectPublicKeyInfo."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key.public_bytes_raw()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
