"""Typed models of every configuration file, and their JSON Schemas (docs/schema/*.json).

- ``network``: the network file (`blindgate.api.network`, read by the gateway and the agents);
- ``agent``: an agent file, ``blindgate-agent/1`` (`blindgate agent --config`);
- ``field-policy``: a field policy, ``blindgate-field-policy/1`` (`blindgate.agent.policy`);
- ``gateway-options``: the options of `blindgate gateway` (command-line flags, or the
  ``BLINDGATE_GATEWAY_*`` environment its workers read), as one object.

The limits here are the loaders' (order-code TTL, currencies, fee-rate form, ports, worker
counts); the loaders stay the authority on what runs, and `blindgate agent` checks its file
against :class:`AgentFile` first. :func:`validated` turns a refusal into a `ConfigError`
naming the field and the rule broken, never the value (``hide_input_in_errors``).
Regenerate the schemas with ``python -m blindgate.api.config_models docs/schema``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blindgate.api.amounts import EXPONENTS
from blindgate.api.network import FORMAT as NETWORK_FORMAT
from blindgate.api.network import (
    MAX_ORDER_CODE_TTL_S,
    MAX_PURGE_BATCH,
    MAX_REFUND_WINDOW_DAYS,
    MAX_RETENTION_DAYS,
    ConfigError,
)
from blindgate.net.limits import ServeLimits

AGENT_FORMAT = "blindgate-agent/1"
POLICY_FORMAT = "blindgate-field-policy/1"

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Url = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^https?://")]
Pem = Annotated[str, Field(pattern=r"^-----BEGIN CERTIFICATE-----", description="one PEM certificate")]
Currency = Annotated[
    str, Field(pattern="^(" + "|".join(sorted(EXPONENTS)) + ")$", description="ISO 4217, carried")
]
Rate = Annotated[str, Field(pattern=r"^0(\.[0-9]+)?$", description="a decimal string in [0, 1)")]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class VersionedKeys(_Strict):
    current: int = Field(ge=1)
    versions: dict[str, str]


class KeyBundle(_Strict):
    """A party's public keys (`blindgate.crypto.KeyStore.public_bundle`)."""

    format: str
    party_id: Id
    seal: dict[str, Any] | None = Field(default=None, description="the HPKE recipient key (partners only)")
    rsa: VersionedKeys
    ed25519: VersionedKeys


class BusinessDay(_Strict):
    zone: str = Field(default="UTC", description="an IANA time zone")
    cutoff: str = Field(default="00:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM")


class Retention(_Strict):
    """How long the gateway keeps what it holds only for a payment's lifecycle (docs/privacy.md)."""

    refund_window_days: int = Field(
        default=365,
        ge=0,
        le=MAX_REFUND_WINDOW_DAYS,
        description="refunds after this are REFUND_WINDOW_EXCEED",
    )
    retention_days: int = Field(
        default=30, ge=0, le=MAX_RETENTION_DAYS, description="kept this long after the lifecycle ends"
    )
    purge_every_s: int = Field(default=3600, ge=1, description="how often the gateway purges")
    purge_batch: int = Field(default=200, ge=1, le=MAX_PURGE_BATCH, description="payments per transaction")


class GatewayEntry(_Strict):
    party_id: Id
    url: Url
    keys: KeyBundle
    rates: str | None = Field(default=None, description="an FX rate file; null: the one shipped")
    wallet_timeout_s: float = Field(default=5.0, gt=0)
    quote_ttl_s: int = Field(default=60, ge=1)
    clock_skew_s: int = Field(default=300, ge=0)
    order_code_ttl_s: int = Field(default=300, ge=1, le=MAX_ORDER_CODE_TTL_S)
    tls_cert: Pem | None = Field(default=None, description="pinned by the agents; only with an https url")
    business_day: BusinessDay = Field(default_factory=lambda: BusinessDay())
    retention: Retention = Field(default_factory=lambda: Retention())


class RiskLimits(_Strict):
    """Per pseudonymous payer, minor units of the wallet's currency; 0 = no limit."""

    max_amount: int = Field(default=0, ge=0)
    window_s: int = Field(default=60, ge=1)
    max_payments: int = Field(default=0, ge=0)
    max_total: int = Field(default=0, ge=0)


class PartnerEntry(_Strict):
    party_id: Id
    role: Literal["wallet", "acquirer"]
    client_id: Id
    currency: Currency
    agent_url: Url
    keys: KeyBundle
    code_prefixes: list[Annotated[str, Field(pattern=r"^[0-9]{1,12}$")]] = Field(
        default_factory=list, description="a wallet's payment-code prefixes (at least one)"
    )
    risk: RiskLimits = Field(default_factory=lambda: RiskLimits())
    fee_rate: Rate = "0"
    tls_cert: Pem | None = None


class NetworkFile(_Strict):
    """The network file: the gateway and every partner, with keys, currencies and endpoints."""

    format: Literal[NETWORK_FORMAT]  # type: ignore[valid-type]
    gateway: GatewayEntry
    partners: list[PartnerEntry] = Field(min_length=1)


class AgentBackend(_Strict):
    client_id: Id
    public_key: str = Field(description="PEM file of the backend's (or SDK client's) RSA public key")
    url: str = Field(default="", description="a wallet backend's Alipay+ endpoint; unused for an acquirer")
    tls_cert: str | None = Field(
        default=None, description="the backend's TLS certificate (PEM file): the agent trusts it alone"
    )
    notify_url: str = Field(
        default="", description="an acquirer's: where a notification goes when the pay request named none"
    )


class AgentTransparency(_Strict):
    """The partners' transparency log: the agent seals to a peer's key only once it vouches for it."""

    log: Url
    log_key: str = Field(description="the log's public key file")
    witnesses: list[str] = Field(description="public key files of the witnesses a head needs")
    identities: dict[str, str] = Field(
        default_factory=dict, description="party id -> its identity public key file, pinned at onboarding"
    )
    identity_key: str | None = Field(
        default=None,
        description="this party's own identity private key file (PEM): with it, a key rotation "
        "publishes the new key bundle to the log",
    )


class KeyRotation(_Strict):
    """The agent rotates its sealing key on a schedule and destroys superseded ones (docs/privacy.md)."""

    rotate_days: float = Field(default=90, gt=0, description="rotate the sealing key when it is this old")
    retention_days: float = Field(
        default=400, ge=0, description="destroy a superseded key this long after it was superseded"
    )
    check_every_s: float = Field(default=3600, ge=1, description="how often the agent looks")


_LIMITS = ServeLimits()
Seconds = Annotated[float, Field(gt=0, le=3600)]


class ConnectionLimits(_Strict):
    """How the service bounds its connections (`blindgate.net.serving`); each field defaults."""

    max_connections: int = Field(default=_LIMITS.max_connections, ge=1, le=1_000_000)
    header_timeout_s: Seconds = _LIMITS.header_timeout_s
    body_timeout_s: Seconds = _LIMITS.body_timeout_s
    keep_alive_s: Seconds = _LIMITS.keep_alive_s
    tls_handshake_timeout_s: Seconds = _LIMITS.tls_handshake_timeout_s

    def limits(self) -> ServeLimits:
        return ServeLimits(**self.model_dump())


class AgentFile(_Strict):
    """An agent file; relative paths are relative to it."""

    format: Literal[AGENT_FORMAT]  # type: ignore[valid-type]
    network: str = Field(description="the network file")
    keys: str = Field(description="the party's key store folder")
    policy: str | None = Field(default=None, description="a field policy file; null: the shipped one")
    backend: AgentBackend
    state: str = Field(default="state", description="the agent's own record of its payments (a folder)")
    transparency: AgentTransparency | None = None
    key_rotation: KeyRotation | None = Field(
        default_factory=lambda: KeyRotation(), description="null: no rotation by the agent (by hand only)"
    )
    host: str = "127.0.0.1"
    port: Port = 8443
    tls_cert: str | None = Field(default=None, description="PEM certificate file to serve TLS with")
    tls_key: str | None = Field(default=None, description="its private key file")
    log: str | None = Field(default=None, description="JSON log file; null: stderr")
    connections: ConnectionLimits = Field(default_factory=ConnectionLimits)


class FieldPolicyFile(_Strict):
    """Fields named in ``clear`` travel in clear; every other leaf is sealed."""

    format: Literal[POLICY_FORMAT]  # type: ignore[valid-type]
    note: str | None = None
    clear: list[Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.]+(\.\*)?$")]]


class GatewayOptions(_Strict):
    """`blindgate gateway --network --keys [--db --host --port --log --workers]`."""

    network: str = Field(description="the network file")
    keys: str = Field(description="the gateway's signing-only key store folder")
    db: str = Field(default="sqlite:///gateway.db", description="SQLAlchemy URL (sqlite, postgresql+psycopg)")
    host: str = "127.0.0.1"
    port: Port = 8000
    log: str | None = Field(default=None, description="JSON log file; null: stderr")
    workers: int = Field(default=1, ge=1, le=64)
    max_connections: int = Field(default=_LIMITS.max_connections, ge=1, le=1_000_000)
    header_timeout: Seconds = _LIMITS.header_timeout_s
    body_timeout: Seconds = _LIMITS.body_timeout_s
    keep_alive_timeout: Seconds = _LIMITS.keep_alive_s
    tls_handshake_timeout: Seconds = _LIMITS.tls_handshake_timeout_s


MODELS: dict[str, type[BaseModel]] = {
    "network": NetworkFile,
    "agent": AgentFile,
    "field-policy": FieldPolicyFile,
    "gateway-options": GatewayOptions,
}

Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], data: Any, what: str) -> Model:
    """``data`` as ``model``; `ConfigError` naming each bad field and rule, never a value."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(error['loc'])}: {error['msg']}" for error in exc.errors())
        raise ConfigError(f"{what} is not valid: {problems}") from None


def _where(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "(top)"


def json_schema(name: str) -> dict[str, Any]:
    schema = MODELS[name].model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://blindgate.invalid/schema/{name}.json"
    return schema


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in MODELS:
        path = folder / f"{name}.json"
        path.write_text(json.dumps(json_schema(name), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for each in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schema")):
        print(each)
