"""What the payment operations (`pay`, `refunds`, `cancels`) share: their context and lookups.

What the gateway sees and keeps (it is blind): the acquirer and wallet ids, the amounts
and currencies, the FX quote, the wallet's pseudonym of the payer, result codes, and the
payer's customerId sealed to the acquirer. The payer's fields arrive sealed to the wallet
(see `blindgate.agent.policy`); the gateway forwards them to the wallet's agent without
storing or logging them, and cannot open them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from blindgate.api.models import PaymentRef
from blindgate.api.network import ACQUIRER, WALLET, Network, Partner
from blindgate.api.results import RESULTS, ApiError
from blindgate.crypto.sealing import SealedValueInvalid, parse_envelope
from blindgate.gateway.calls import PartnerCaller
from blindgate.gateway.repository import PaymentRow, Repository
from blindgate.storage.offload import Offload


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PaymentContext:
    """The network, the store, the wallets' caller and the clock every payment operation uses.

    ``store`` is the repository's synchronous SQL; ``db`` runs it off the event loop
    (`blindgate.storage.offload`): every store call of a request goes through ``db``."""

    network: Network
    store: Repository
    db: Offload
    caller: PartnerCaller
    clock: Callable[[], datetime] = utcnow

    @property
    def timeout_s(self) -> float:
        """How long the gateway waits for a wallet's answer before leaving a payment U."""
        return self.network.gateway.wallet_timeout_s

    def wallet(self, wallet_id: str) -> Partner:
        wallet = self.network.partner(wallet_id)
        if wallet is None or wallet.role != WALLET:
            raise ApiError("PARTNER_NOT_EXIST", "no wallet of that id in this network")
        return wallet

    async def ask(self, wallet_id: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Call the wallet's agent on ``path``, signed; raises NoAnswer past `timeout_s`."""
        answer: dict[str, Any] = await self.caller.call(self.wallet(wallet_id), path, body, self.timeout_s)
        return answer

    async def find(self, acquirer: Partner, ref: PaymentRef) -> PaymentRow:
        """The acquirer's payment named by ``ref``; ORDER_NOT_EXIST for any other."""
        if acquirer.role != ACQUIRER:
            raise ApiError("KEY_NOT_FOUND", "only an acquirer calls this API")
        if ref.payment_request_id is not None:
            row = await self.db.run(self.store.payment_by_request, acquirer.party_id, ref.payment_request_id)
        else:
            assert ref.payment_id is not None
            row = await self.db.run(self.store.payment, ref.payment_id)
        if row is None or row.acquirer_id != acquirer.party_id:
            raise ApiError("ORDER_NOT_EXIST", "no payment with this id")
        return row

    async def current(self, row: PaymentRow) -> PaymentRow:
        """The payment as stored now (another writer settled it first: theirs stands)."""
        fresh = await self.db.run(self.store.payment, row.payment_id)
        assert fresh is not None  # payments are never deleted
        return fresh


def about(row: PaymentRow) -> dict[str, Any]:
    """Names a payment toward its wallet: the gateway's id, and the acquirer's (the seal context)."""
    return {
        "paymentRequestId": row.payment_id,
        "acquirerId": row.acquirer_id,
        "acquirerPaymentRequestId": row.payment_request_id,
    }


def known_code(code: object) -> str:
    """A partner's result code if the contract knows it, else UNKNOWN_EXCEPTION."""
    text = str(code)
    return text if text in RESULTS else "UNKNOWN_EXCEPTION"


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; the store writes UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def iso(moment: datetime) -> str:
    return aware(moment).replace(microsecond=0).isoformat()


def sealed_to(value: object, party_id: str) -> bool:
    try:
        return isinstance(value, str) and parse_envelope(value).kid == party_id
    except SealedValueInvalid:
        return False


def short_text(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None
