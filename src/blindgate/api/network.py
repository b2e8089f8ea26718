"""The network file: who is in the network, with which keys, currencies, endpoints and limits.

One JSON document, read by the gateway and by every agent (each takes what it needs)::

    {
      "format": "blindgate-network/1",
      "gateway": {"party_id": "GATEWAY", "url": "http://127.0.0.1:8000",
                  "keys": {<public bundle>}, "rates": null,
                  "wallet_timeout_s": 5.0, "quote_ttl_s": 60, "clock_skew_s": 300,
                  "order_code_ttl_s": 300,
                  "business_day": {"zone": "Asia/Singapore", "cutoff": "00:00"},
                  "retention": {"refund_window_days": 365, "retention_days": 30,
                                "purge_every_s": 3600, "purge_batch": 200}},
      "partners": [
        {"party_id": "WALLET_KR", "role": "wallet", "client_id": "WALLET_KR_CLIENT",
         "currency": "KRW", "code_prefixes": ["28"], "agent_url": "http://127.0.0.1:9001",
         "keys": {<public bundle>}, "fee_rate": "0.005",
         "risk": {"max_amount": 5000000, "window_s": 60, "max_payments": 20, "max_total": 20000000}},
        {"party_id": "ACQ_SG", "role": "acquirer", "client_id": "ACQ_SG_CLIENT",
         "currency": "SGD", "agent_url": "https://127.0.0.2", "keys": {<public bundle>},
         "tls_cert": "-----BEGIN CERTIFICATE-----\n...", "fee_rate": "0.015"}
      ]
    }

``keys`` is `blindgate.crypto.KeyStore.public_bundle` of the party. ``rates`` names an FX
rate file (null: the one shipped in the package, `blindgate/gateway/rates.json`).
``agent_url`` of a wallet is where the gateway calls its agent; of an acquirer, where the
gateway sends its payment notifications.

``tls_cert`` (optional, of a partner or of the gateway) is the PEM certificate that the
agent (or the gateway) serves at its ``https`` URL. Whoever calls that URL trusts exactly
this certificate, pinned, and no certificate authority (`blindgate.gateway.calls.pinned_client`);
an ``https`` URL without one is verified against the system's authorities; plain ``http``
is for loopback deployments such as the demo, whose payloads are sealed and signed anyway.

Risk limits are in minor units of the wallet's currency, per pseudonymous payer (see
`blindgate.gateway.risk`).

``fee_rate`` (a decimal string, a fraction in [0, 1), default "0") is the partner's fee: of
an acquirer, its merchant discount rate on the payment amount; of a wallet, its share on the
amount it collects (see `blindgate.ledger.money.FeeSchedule`). ``business_day``
(default UTC, 00:00) is the daily cut-off, local time in an IANA time zone, that closes
each settlement batch. ``order_code_ttl_s`` (default 300, at most 1800) is how long a
merchant-presented order code stays payable when the request names no ``paymentExpiryTime``.

``retention`` (every field optional) bounds how long the gateway keeps what it holds only for a
payment's lifecycle (`blindgate.storage.retention`): a successful payment can be refunded for
``refund_window_days`` (default 365) after it was made, later refunds are refused with
REFUND_WINDOW_EXCEED; once a payment's lifecycle has ended (its refund window closed, or at
once for a payment that failed or was cancelled) and every ledger posting of it lies in a
closed business day, its payer-related columns are kept ``retention_days`` more (default 30:
inquiries, disputes), then purged. The gateway purges every ``purge_every_s`` seconds (default
3600), ``purge_batch`` payments (default 200) per transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography import x509

from blindgate.api.amounts import EXPONENTS
from blindgate.api.errors import ContractError
from blindgate.crypto.keystore import PublicBundle

FORMAT = "blindgate-network/1"
WALLET, ACQUIRER = "wallet", "acquirer"


class ConfigError(ContractError):
    """The network file is missing, malformed or inconsistent (the message says where)."""


@dataclass(frozen=True)
class RiskLimits:
    """Per-payer limits of one wallet, in minor units of the wallet's currency. 0 = no limit."""

    max_amount: int = 0
    window_s: int = 60
    max_payments: int = 0
    max_total: int = 0


@dataclass(frozen=True)
class Partner:
    party_id: str
    role: str
    client_id: str
    currency: str
    agent_url: str
    keys: PublicBundle
    code_prefixes: tuple[str, ...] = ()
    risk: RiskLimits = field(default_factory=RiskLimits)
    fee_rate: Decimal = Decimal(0)  # acquirer: merchant discount rate; wallet: its share
    tls_cert: str | None = None  # the agent's TLS certificate (PEM), pinned by its callers


@dataclass(frozen=True)
class Retention:
    """How long a payment's lifecycle data lives (the module docstring; docs/privacy.md)."""

    refund_window_days: int = 365
    retention_days: int = 30
    purge_every_s: int = 3600
    purge_batch: int = 200

    @property
    def refund_window(self) -> timedelta:
        return timedelta(days=self.refund_window_days)

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days)


MAX_REFUND_WINDOW_DAYS, MAX_RETENTION_DAYS, MAX_PURGE_BATCH = 3660, 3660, 10_000


@dataclass(frozen=True)
class GatewaySettings:
    party_id: str
    url: str
    keys: PublicBundle
    rates: Path | None = None
    wallet_timeout_s: float = 5.0
    quote_ttl_s: int = 60
    clock_skew_s: int = 300
    order_code_ttl_s: int = 300  # a merchant-presented order code's default lifetime
    business_day_zone: str = "UTC"  # the daily cut-off: local time ``business_day_cutoff`` there
    business_day_cutoff: time = field(default_factory=lambda: time(0))
    tls_cert: str | None = None  # the gateway's TLS certificate (PEM), pinned by the agents
    retention: Retention = field(default_factory=Retention)


@dataclass(frozen=True)
class Network:
    gateway: GatewaySettings
    partners: tuple[Partner, ...]

    def partner(self, party_id: str) -> Partner | None:
        return next((p for p in self.partners if p.party_id == party_id), None)

    def by_client_id(self, client_id: str) -> Partner | None:
        return next((p for p in self.partners if p.client_id == client_id), None)

    def wallets(self) -> list[Partner]:
        return [p for p in self.partners if p.role == WALLET]

    def wallet_for_code(self, payment_code: str) -> Partner | None:
        """The wallet whose payment-code prefix starts ``payment_code`` (longest prefix wins)."""
        best: tuple[int, Partner | None] = (0, None)
        for wallet in self.wallets():
            for prefix in wallet.code_prefixes:
                if payment_code.startswith(prefix) and len(prefix) > best[0]:
                    best = (len(prefix), wallet)
        return best[1]


def load_network(path: str | Path) -> Network:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the network file {path}: {type(exc).__name__}") from exc
    return parse_network(data)


def parse_network(data: Any) -> Network:
    try:
        if data["format"] != FORMAT:
            raise ConfigError(f"the network file is not {FORMAT}")
        gateway = data["gateway"]
        if "plaintext" in gateway:
            raise ConfigError("the network file cannot switch sealing off (plaintext is not a setting)")
        settings = GatewaySettings(
            party_id=str(gateway["party_id"]),
            url=str(gateway["url"]),
            keys=PublicBundle.from_json(gateway["keys"]),
            rates=Path(gateway["rates"]) if gateway.get("rates") else None,
            wallet_timeout_s=float(gateway.get("wallet_timeout_s", 5.0)),
            quote_ttl_s=int(gateway.get("quote_ttl_s", 60)),
            clock_skew_s=int(gateway.get("clock_skew_s", 300)),
            order_code_ttl_s=_order_code_ttl(gateway.get("order_code_ttl_s", 300)),
            tls_cert=_tls_cert(gateway.get("tls_cert"), str(gateway["url"]), "the gateway"),
            retention=_retention(gateway.get("retention", {})),
            **_business_day(gateway.get("business_day", {})),
        )
        partners = tuple(_partner(item) for item in data["partners"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"the network file is malformed ({type(exc).__name__}: {exc})") from exc
    _check_unique([p.party_id for p in partners] + [settings.party_id], "party_id")
    _check_unique([p.client_id for p in partners], "client_id")
    return Network(settings, partners)


def _partner(item: dict[str, Any]) -> Partner:
    role = item["role"]
    if role not in (WALLET, ACQUIRER):
        raise ConfigError(f"partner role must be {WALLET} or {ACQUIRER}")
    currency = item["currency"]
    if currency not in EXPONENTS:
        raise ConfigError("a partner's currency is not a supported ISO 4217 code")
    risk = RiskLimits(**item.get("risk", {}))
    partner = Partner(
        party_id=str(item["party_id"]),
        role=role,
        client_id=str(item["client_id"]),
        currency=currency,
        agent_url=str(item["agent_url"]).rstrip("/"),
        keys=PublicBundle.from_json(item["keys"]),
        code_prefixes=tuple(str(p) for p in item.get("code_prefixes", ())),
        risk=risk,
        fee_rate=_fee_rate(item.get("fee_rate", "0")),
        tls_cert=_tls_cert(item.get("tls_cert"), str(item["agent_url"]), "a partner's agent"),
    )
    if partner.keys.party_id != partner.party_id:
        raise ConfigError("a partner's key bundle belongs to another party")
    if role == WALLET and not partner.code_prefixes:
        raise ConfigError("a wallet needs at least one payment-code prefix")
    return partner


def _tls_cert(value: Any, url: str, whose: str) -> str | None:
    """A pinned TLS certificate: exactly one leaf certificate (PEM), for an https URL (None if
    not given). A pin is the one certificate its server presents, never a trust anchor: a CA
    certificate, or a PEM with several, would let every certificate they sign stand in."""
    if value is None:
        return None
    if not url.startswith("https://"):
        raise ConfigError(f"{whose} has a tls_cert but its URL is not https")
    try:
        certificates = x509.load_pem_x509_certificates(str(value).encode())
    except ValueError:
        raise ConfigError(f"the tls_cert of {whose} is not a PEM certificate") from None
    if len(certificates) != 1:
        raise ConfigError(f"the tls_cert of {whose} must be exactly one certificate")
    try:
        authority = certificates[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        authority = False
    if authority:
        raise ConfigError(f"the tls_cert of {whose} is a CA certificate, not the server's own")
    return str(value)


MAX_ORDER_CODE_TTL_S = 30 * 60  # Alipay+: a payment expiry under 30 minutes


def _order_code_ttl(value: Any) -> int:
    seconds = int(value)
    if not 1 <= seconds <= MAX_ORDER_CODE_TTL_S:
        raise ConfigError(f"order_code_ttl_s must be 1..{MAX_ORDER_CODE_TTL_S} seconds")
    return seconds


def _fee_rate(value: Any) -> Decimal:
    """A fee rate from its decimal string (never a float, which cannot hold most rates)."""
    try:
        rate = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or not 0 <= rate < 1:
        raise ConfigError('a partner\'s fee_rate must be a decimal string in [0, 1), e.g. "0.015"')
    return rate


def _retention(item: dict[str, Any]) -> Retention:
    unknown = set(item) - {"refund_window_days", "retention_days", "purge_every_s", "purge_batch"}
    if unknown:
        raise ConfigError("retention knows refund_window_days, retention_days, purge_every_s, purge_batch")
    if not all(type(value) is int for value in item.values()):  # not a bool, float or string
        raise ConfigError("retention's values are whole numbers")
    retention = Retention(**item)
    if not 0 <= retention.refund_window_days <= MAX_REFUND_WINDOW_DAYS:
        raise ConfigError(f"retention.refund_window_days must be 0..{MAX_REFUND_WINDOW_DAYS}")
    if not 0 <= retention.retention_days <= MAX_RETENTION_DAYS:
        raise ConfigError(f"retention.retention_days must be 0..{MAX_RETENTION_DAYS}")
    if retention.purge_every_s < 1 or not 1 <= retention.purge_batch <= MAX_PURGE_BATCH:
        raise ConfigError(f"retention.purge_every_s must be >= 1 and purge_batch 1..{MAX_PURGE_BATCH}")
    return retention


def _business_day(item: dict[str, Any]) -> dict[str, Any]:
    zone = str(item.get("zone", "UTC"))
    try:
        ZoneInfo(zone)
        cutoff = time.fromisoformat(str(item.get("cutoff", "00:00")))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("business_day needs an IANA time zone and a cut-off HH:MM") from None
    return {"business_day_zone": zone, "business_day_cutoff": cutoff}


def _check_unique(values: list[str], name: str) -> None:
    if len(set(values)) != len(values):
        raise ConfigError(f"the network file repeats a {name}")


def network_document(gateway: dict[str, Any], partners: list[dict[str, Any]]) -> dict[str, Any]:
    """Build a network file's JSON (checked by parsing it): for the demo and tests."""
    document = {"format": FORMAT, "gateway": gateway, "partners": partners}
    parse_network(document)
    return document
