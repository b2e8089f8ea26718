"""The demo network: every party's keys, configuration files and process, from a population.

Parties and where they listen (all loopback; ports above 1024 are picked free at start):

- each wallet's backend (`blindgate_testbed.partners.wallet`), HTTP, RSA256 with its agent (both
  ways: its app's order-code scans go to its agent);
- each wallet's blindgate agent, HTTP toward the gateway (Ed25519), RSA256 to its backend;
- the gateway, HTTP;
- each acquirer's blindgate agent on ``127.0.0.<2+i>:443`` with TLS, because the official
  SDK connects to port 443 of the URL's host whatever the URL says;
- each acquirer's backend (`blindgate_testbed.partners.acquirer`): its ``paymentNotifyUrl``.

Key material: each agent and the gateway get a `blindgate.crypto.KeyStore` in their own
folder; each partner backend keeps the RSA key of its existing Alipay+ integration in its own
folder and trusts its agent's RSA public key (the agent stands where Alipay+ stood).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import ssl
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from blindgate.api.config_models import AGENT_FORMAT
from blindgate.console.users import add_user
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import rsa_private_key_for_sdk, rsa_public_key_for_sdk
from blindgate.fileio import write_atomically
from blindgate.net import Identity
from blindgate_testbed.layout import RunLayout
from blindgate_testbed.partner_server import write_backend_config, write_rsa_private_key, write_rsa_public_key
from blindgate_testbed.partners.acquirer import NOTIFY_PATH, AcquirerClient, AcquirerJournal, NotificationBook
from blindgate_testbed.partners.wallet import WalletApp, WalletBook
from blindgate_testbed.plan import Ports, Service, relative, write_services
from blindgate_testbed.population import Population
from blindgate_testbed.services import ServiceSpec
from blindgate_testbed.transparency import TRANSLOG_DB, Oversight, oversight, save_oversight

GATEWAY_ID = "GATEWAY"
WALLET_TIMEOUT_S = 5.0
RSA_BITS = 2048


def write_tls_certificate(host: str, directory: Path) -> tuple[Path, Path]:
    """A self-signed leaf certificate for ``host`` (`Identity.for_server`), key and certificate
    as PEM files: the network file pins it; the official SDK does not verify the server's
    certificate (it uses an unverified TLS context)."""
    identity = Identity.for_server(host)
    directory.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = directory / "tls-key.pem", directory / "tls-cert.pem"
    write_atomically(key_path, identity.key_pem, permissions=0o600)
    write_atomically(cert_path, identity.cert_pem)
    return key_path, cert_path


def check_can_listen(host: str, port: int) -> None:
    """Fail early and clearly when ``host:port`` is taken (another demo or test?) or forbidden."""
    with socket.socket() as probe:
        # As the servers bind (uvicorn sets SO_REUSEADDR): a previous run's connections still
        # in TIME_WAIT do not keep the address, a listening server does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CannotListen(
                f"cannot listen on {host}:{port} ({exc.strerror}): is another demo or test running? "
                "(the official SDK only connects to port 443, so the acquirer agents need it; run as root "
                "or grant CAP_NET_BIND_SERVICE)"
            ) from None


@dataclass
class WalletSide:
    wallet_id: str
    currency: str
    backend_url: str
    book_path: Path
    opening_total: int
    backend_public_key: rsa.RSAPublicKey
    agent_keys: KeyStore
    agent_url: str = ""


@dataclass
class AcquirerSide:
    acquirer_id: str
    currency: str
    agent_host: str  # 127.0.0.N: its agent listens on port 443 there
    client_id: str
    merchant_key: rsa.RSAPrivateKey
    notify_url: str
    book_path: Path
    agent_keys: KeyStore


@dataclass
class DemoNetwork:
    layout: RunLayout
    ports: Ports = field(default_factory=Ports)
    wallets: list[WalletSide] = field(default_factory=list)
    acquirers: list[AcquirerSide] = field(default_factory=list)
    plan: list[Service] = field(default_factory=list)  # in start order (services.json)
    gateway_url: str = ""
    console_url: str = ""
    oversight: Oversight | None = None
    key_checks: bool = True  # the agents verify peers' keys in the transparency log

    @property
    def services(self) -> list[ServiceSpec]:
        """The processes to start, in order, each run from the run directory."""
        return [service.spec(self.layout.root) for service in self.plan]

    def verified_keys(self) -> dict[str, list[dict[str, Any]]]:
        """Each agent's keys the transparency log vouched for (its ``/keys/verified``)."""
        agents = {w.wallet_id: w.agent_url for w in self.wallets}
        agents |= {a.acquirer_id: f"https://{a.agent_host}" for a in self.acquirers}
        found = {}
        for party, url in agents.items():
            pinned = ssl.create_default_context(cafile=self.layout.agent(party) / "tls-cert.pem")
            found[party] = list(httpx.get(url + "/keys/verified", verify=pinned, timeout=5.0).json())
        return found

    def payers_of_payments(self) -> dict[str, tuple[str, str]]:
        """Ground truth the operator lacks: gateway payment id -> (wallet, customer), from the
        wallets' own books (for `blindgate.audit.linkage`)."""
        found: dict[str, tuple[str, str]] = {}
        for wallet in self.wallets:
            with sqlite3.connect(wallet.book_path) as db:
                query = "SELECT payment_request_id, customer_id FROM payments WHERE customer_id IS NOT NULL"
                rows = db.execute(query)
                found |= {payment: (wallet.wallet_id, customer) for payment, customer in rows}
        return found

    def publish_key_bundles(self) -> int:
        """Every partner's key bundle, and the operator's, into the transparency log (the services
        must be up)."""
        assert self.oversight is not None
        stores = {p.wallet_id: self.layout.agent(p.wallet_id) / "keys" for p in self.wallets}
        stores |= {p.acquirer_id: self.layout.agent(p.acquirer_id) / "keys" for p in self.acquirers}
        stores[GATEWAY_ID] = self.layout.gateway / "keys"
        return self.oversight.publish_bundles(stores)

    def acquirer_clients(self) -> dict[str, AcquirerClient]:
        """Each acquirer's unchanged SDK client, pointed at its agent."""
        return {
            a.acquirer_id: AcquirerClient(
                f"https://{a.agent_host}",
                a.client_id,
                rsa_private_key_for_sdk(a.merchant_key),
                rsa_public_key_for_sdk(a.agent_keys.rsa_key().public_key()),
                a.notify_url,
            )
            for a in self.acquirers
        }

    def wallet_apps(self) -> dict[str, WalletApp]:
        """Each wallet's customer app ("scan order code"), talking to the wallet's backend."""
        return {
            w.wallet_id: WalletApp(w.backend_url, pinned=self.layout.backend(w.wallet_id) / "tls-cert.pem")
            for w in self.wallets
        }

    def wallet_debits(self) -> dict[str, int]:
        """Net debit of each wallet's payers, in minor units of the wallet's currency."""
        debits: Counter[str] = Counter()
        for wallet in self.wallets:
            book = WalletBook(wallet.book_path, wallet.wallet_id, wallet.currency)
            try:
                debits[wallet.currency] += wallet.opening_total - book.total_balance()
            finally:
                book.close()
        return dict(debits)

    def export_partner_records(self, journals: dict[str, AcquirerJournal]) -> dict[str, str]:
        """Each partner exports its own records (the `blindgate reconcile` format) into its folder.

        A wallet from its own book; an acquirer from the journal its SDK client kept of the
        answers its merchants saw. Returns ``{party_id: path}``.
        """
        written = {}
        for acquirer_id, journal in journals.items():
            path = self.layout.root / "partners" / acquirer_id / "records.csv"
            journal.export(path)
            written[acquirer_id] = str(path)
        for wallet in self.wallets:
            path = self.layout.root / "partners" / wallet.wallet_id / "records.csv"
            book = WalletBook(wallet.book_path, wallet.wallet_id, wallet.currency)
            try:
                book.export_records(path)
            finally:
                book.close()
            written[wallet.wallet_id] = str(path)
        return written

    def notification_outcomes(self) -> dict[str, dict[str, int]]:
        """Per acquirer: payments notified, by resultStatus, and deliveries (redeliveries included)."""
        outcomes = {}
        for acquirer in self.acquirers:
            book = NotificationBook(acquirer.book_path)
            try:
                outcomes[acquirer.acquirer_id] = {**book.outcomes(), "deliveries": book.deliveries()}
            finally:
                book.close()
        return outcomes


def build_network(
    layout: RunLayout,
    population: Population,
    plaintext: bool = False,
    first_agent_host: int = 2,
    database_url: str | None = None,
    ports: Ports | None = None,
    check_listen: bool = True,
    key_checks: bool = True,
) -> DemoNetwork:
    """Write every key and configuration file under ``layout`` and describe every service
    (also in ``services.json``: what `network up` and the compose file run).

    The acquirers' agents listen on ``127.0.0.<first_agent_host + i>:443`` (``check_listen``:
    fail now if that is taken); the gateway's store is ``database_url`` (default: SQLite in the
    gateway's folder); ``ports`` picks the other ports (default: free ones now). ``key_checks``
    False writes the agents' files without their transparency section, so that they seal to the
    network file's keys unchecked: only to measure what the checks cost (the log still runs).
    """
    network = DemoNetwork(layout, ports or Ports())
    network.key_checks = key_checks
    for wallet in population.wallets:
        network.wallets.append(_wallet_backend(network, wallet.wallet_id, wallet.currency, population))
    for index, acquirer in enumerate(population.acquirers):
        host = f"127.0.0.{first_agent_host + index}"
        if check_listen:
            check_can_listen(host, 443)
        network.acquirers.append(_acquirer_backend(network, acquirer.acquirer_id, acquirer.currency, host))
    _gateway_and_agents(network, population, plaintext, database_url or GATEWAY_DB)
    network.plan.append(_console(network, database_url or GATEWAY_DB))
    write_services(layout.root, network.plan)
    return network


CONSOLE_USERS, CONSOLE_PASSWORDS, REPORTS = "console/users.json", "console/passwords.json", "reports"
# Who made each payment: the linkage measure's ground truth, which the operator lacks. `demo --serve`
# writes it from the wallets' books, so that the console's linkage page can measure on request.
PAYERS = "audit/payers.csv"


def _console(network: DemoNetwork, database_url: str) -> Service:
    """The web console beside the gateway, with an operator, a regulator and one user per partner.

    Their passwords are made here and kept (mode 600) in ``console/passwords.json`` for
    whoever runs the testbed to hand out; ``console/users.json`` holds only scrypt hashes.
    """
    root = network.layout.root
    parties = [w.wallet_id for w in network.wallets] + [a.acquirer_id for a in network.acquirers]
    accounts: list[tuple[str, str, str | None]] = [("operator", "operator", None)]
    accounts += [("regulator", "regulator", None)]
    accounts += [(party.lower(), "partner", party) for party in parties]
    passwords = {}
    for name, role, party in accounts:
        passwords[name] = secrets.token_urlsafe(12)
        add_user(root / CONSOLE_USERS, name, role, passwords[name], party)
    (root / CONSOLE_PASSWORDS).touch(mode=0o600)
    (root / CONSOLE_PASSWORDS).write_text(json.dumps(passwords, indent=2) + "\n")
    (root / REPORTS).mkdir(exist_ok=True)
    port = network.ports.take()
    network.console_url = f"http://127.0.0.1:{port}"
    log_key: tuple[str, ...] = ()
    if network.oversight is not None:  # the log's key and its witness's: the console checks both
        log_key = ("--log-key", _relative(network, network.oversight.log_public))
        log_key += ("--witness-key", _relative(network, network.oversight.witness_public))
    return Service(
        name="console",
        command=(
            *("blindgate", "console", "serve", "--db", database_url, "--users", CONSOLE_USERS),
            *("--reports", REPORTS, "--translog-db", TRANSLOG_DB, *log_key),
            *("--network", NETWORK_FILE, "--payers", PAYERS, "--title", "blindgate testbed"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ),
        log="console/console.log",
        health_url=network.console_url + "/health",
        listens=network.console_url,
    )


def _backend_service(network: DemoNetwork, partner_id: str, port: int) -> Service:
    folder = network.layout.backend(partner_id)
    return Service(
        name=f"{partner_id} backend",
        command=("blindgate-testbed", "backend", _relative(network, folder / "backend.json")),
        log=_relative(network, folder / "backend.log"),
        health_url=f"https://127.0.0.1:{port}/health",
        listens=f"https://127.0.0.1:{port}",
    )


def _relative(network: DemoNetwork, path: Path) -> str:
    return relative(network.layout.root, path)


def _wallet_backend(
    network: DemoNetwork, wallet_id: str, currency: str, population: Population
) -> WalletSide:
    folder = network.layout.backend(wallet_id)
    folder.mkdir(parents=True)
    agent_keys = KeyStore.create(network.layout.agent(wallet_id) / "keys", wallet_id)
    own_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    write_rsa_private_key(own_key, folder / "backend-rsa.pem")
    write_rsa_public_key(agent_keys.rsa_key().public_key(), folder / "agent-rsa.pub.pem")
    book_path = folder / "wallet.db"
    book = WalletBook.create(book_path, population.wallet(wallet_id))
    opening = book.total_balance()
    book.close()
    port = network.ports.take()
    # The backend calls its agent when an app scans an order code; the agent's TLS certificate is
    # made here so that the backend can pin it.
    agent_url = f"https://127.0.0.1:{network.ports.take()}"
    _, agent_cert = write_tls_certificate("127.0.0.1", network.layout.agent(wallet_id))
    write_tls_certificate("127.0.0.1", folder)
    write_backend_config(
        folder / "backend.json",
        kind="wallet",
        host="127.0.0.1",
        port=port,
        tls_key="tls-key.pem",
        tls_cert="tls-cert.pem",
        db=book_path.name,
        client_id=f"{wallet_id}_CLIENT",
        private_key="backend-rsa.pem",
        peer_public_key="agent-rsa.pub.pem",
        wallet_id=wallet_id,
        currency=currency,
        code_prefix=population.wallet(wallet_id).payment_code_prefix,
        agent_url=agent_url,
        agent_cert=os.path.relpath(agent_cert, folder),
    )
    network.plan.append(_backend_service(network, wallet_id, port))
    return WalletSide(
        wallet_id,
        currency,
        f"https://127.0.0.1:{port}",
        book_path,
        opening,
        own_key.public_key(),
        agent_keys,
        agent_url,
    )


def _acquirer_backend(network: DemoNetwork, acquirer_id: str, currency: str, host: str) -> AcquirerSide:
    folder = network.layout.backend(acquirer_id)
    folder.mkdir(parents=True)
    agent_keys = KeyStore.create(network.layout.agent(acquirer_id) / "keys", acquirer_id)
    merchant_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    write_rsa_private_key(merchant_key, folder / "merchant-rsa.pem")
    write_rsa_public_key(agent_keys.rsa_key().public_key(), folder / "agent-rsa.pub.pem")
    book_path = folder / "notifications.db"
    NotificationBook(book_path).close()
    port = network.ports.take()
    client_id = f"{acquirer_id}_CLIENT"
    write_tls_certificate("127.0.0.1", folder)
    write_backend_config(
        folder / "backend.json",
        kind="acquirer",
        host="127.0.0.1",
        port=port,
        tls_key="tls-key.pem",
        tls_cert="tls-cert.pem",
        db=book_path.name,
        client_id=client_id,
        private_key="merchant-rsa.pem",
        peer_public_key="agent-rsa.pub.pem",
    )
    network.plan.append(_backend_service(network, acquirer_id, port))
    return AcquirerSide(
        acquirer_id,
        currency,
        host,
        client_id,
        merchant_key,
        f"https://127.0.0.1:{port}{NOTIFY_PATH}",
        book_path,
        agent_keys,
    )


class CannotListen(RuntimeError):
    """An address the demo must listen on is taken or forbidden (the message says which)."""


def _gateway_and_agents(
    network: DemoNetwork, population: Population, plaintext: bool, database_url: str
) -> None:
    """The gateway's network file, its key store, and the agents' and gateway's processes."""
    layout = network.layout
    gateway_keys = KeyStore.create(layout.gateway / "keys", GATEWAY_ID, signing_only=True)
    gateway_port = network.ports.take()
    network.gateway_url = f"https://127.0.0.1:{gateway_port}"
    # Every hop through the gateway is TLS with pinned certificates: the acquirer agents'
    # certificates first (the wallet agents' were made with their backends), then the gateway's.
    tls = {
        a.acquirer_id: write_tls_certificate(a.agent_host, layout.agent(a.acquirer_id))
        for a in network.acquirers
    }
    write_tls_certificate("127.0.0.1", layout.gateway)
    write_network_file(network, population, gateway_keys, {i: cert for i, (_, cert) in tls.items()})
    parties = [w.wallet_id for w in network.wallets] + [a.acquirer_id for a in network.acquirers]
    # The operator publishes its signing keys too: agents verify the gateway only with those.
    network.oversight = oversight(layout, [*parties, GATEWAY_ID], network.ports)
    network.plan.extend(network.oversight.services)
    stores = {party: layout.agent(party) / "keys" for party in parties}
    stores[GATEWAY_ID] = layout.gateway / "keys"
    save_oversight(layout.root, network.oversight, stores)  # what `network up` publishes
    overseen = network.oversight if network.key_checks else None
    # Start order: what is called before what calls it (backends were added first).
    for wallet in network.wallets:
        folder = layout.agent(wallet.wallet_id)
        write_rsa_public_key(wallet.backend_public_key, folder / "backend-rsa.pub.pem")
        port = int(wallet.agent_url.rsplit(":", 1)[1])
        backend = {
            "client_id": f"{wallet.wallet_id}_CLIENT",
            "public_key": "backend-rsa.pub.pem",
            "url": wallet.backend_url,
            "tls_cert": os.path.relpath(layout.backend(wallet.wallet_id) / "tls-cert.pem", folder),
        }
        pem = {"tls_cert": "tls-cert.pem", "tls_key": "tls-key.pem"}
        write_agent_file(folder, layout.network_file, backend, overseen, host="127.0.0.1", port=port, **pem)
        network.plan.append(_agent(network, wallet.wallet_id, wallet.agent_url, plaintext))
    network.plan.append(
        Service(
            name="gateway",
            command=_gateway_command(database_url, gateway_port, plaintext),
            log="gateway/gateway.log",
            health_url=network.gateway_url + "/health",
            listens=network.gateway_url,
        )
    )
    for acquirer in network.acquirers:
        folder = layout.agent(acquirer.acquirer_id)
        write_rsa_public_key(acquirer.merchant_key.public_key(), folder / "merchant-rsa.pub.pem")
        tls_key, tls_cert = tls[acquirer.acquirer_id]
        backend = {
            "client_id": acquirer.client_id,
            "public_key": "merchant-rsa.pub.pem",
            "tls_cert": os.path.relpath(layout.backend(acquirer.acquirer_id) / "tls-cert.pem", folder),
        }
        pem = {"tls_cert": tls_cert.name, "tls_key": tls_key.name}
        write_agent_file(
            folder, layout.network_file, backend, overseen, host=acquirer.agent_host, port=443, **pem
        )
        url = f"https://{acquirer.agent_host}"
        network.plan.append(_agent(network, acquirer.acquirer_id, url, plaintext))


def write_agent_file(
    folder: Path, network_file: Path, backend: dict[str, str], overseen: Oversight | None, **listen: object
) -> Path:
    """``agent.json`` in the format `blindgate agent --config` reads (paths relative to it)."""
    path = folder / "agent.json"
    document = {
        "format": AGENT_FORMAT,
        "network": os.path.relpath(network_file, folder),
        "keys": "keys",
        "policy": None,
        "backend": backend,
        **listen,
    }
    if overseen is not None:
        document["transparency"] = overseen.agent_section(folder)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def _agent(network: DemoNetwork, partner_id: str, url: str, plaintext: bool) -> Service:
    folder = network.layout.agent(partner_id)
    agent_file = _relative(network, folder / "agent.json")
    shipped = ("blindgate", "agent", "--config", agent_file)
    return Service(
        name=f"{partner_id} agent",
        command=_plaintext("agent", agent_file) if plaintext else shipped,
        log=_relative(network, folder / "agent.log"),
        health_url=url + "/health",
        listens=url,
    )


def _gateway_command(database_url: str, port: int, plaintext: bool) -> tuple[str, ...]:
    keys, cert, key = "gateway/keys", "gateway/tls-cert.pem", "gateway/tls-key.pem"
    if plaintext:
        return _plaintext("gateway", NETWORK_FILE, keys, database_url, "127.0.0.1", str(port), cert, key)
    return (
        *("blindgate", "gateway", "--network", NETWORK_FILE, "--keys", keys, "--db", database_url),
        *("--host", "127.0.0.1", "--port", str(port), "--tls-cert", cert, "--tls-key", key),
    )


def _plaintext(*args: str) -> tuple[str, ...]:
    """PETs off, for comparison only: the same apps built from code (`blindgate_testbed.plaintext`)."""
    return ("blindgate-testbed", "plaintext", *args)


# Per-payer risk limits of each wallet, in its currency's minor units: generous enough that
# the demo's traffic passes, real enough to be enforced (a payment above max_amount fails).
_RISK = {
    "KRW": {"max_amount": 1_000_000, "window_s": 60, "max_payments": 30, "max_total": 10_000_000},
    "THB": {"max_amount": 2_500_000, "window_s": 60, "max_payments": 30, "max_total": 25_000_000},
    "SGD": {"max_amount": 100_000, "window_s": 60, "max_payments": 30, "max_total": 1_000_000},
}


# The demo's fees and business day: a 1.5% merchant discount rate charged to the acquirers,
# a 0.5% share paid to the wallets (the gateway keeps the rest), a day ending at midnight
# in Singapore. Decimal strings: the ledger never sees a float rate.
MERCHANT_DISCOUNT_RATE, WALLET_SHARE_RATE = "0.015", "0.005"
BUSINESS_DAY = {"zone": "Asia/Singapore", "cutoff": "00:00"}


def write_network_file(
    network: DemoNetwork,
    population: Population,
    gateway_keys: KeyStore,
    acquirer_certs: dict[str, Path],
) -> None:
    """``network.json`` in the gateway's format (`blindgate.api.network`), pinning each
    acquirer agent's TLS certificate (``acquirer_certs``: acquirer id -> its PEM file)."""
    from blindgate.api.network import network_document

    gateway = {
        "party_id": GATEWAY_ID,
        "url": network.gateway_url,
        "keys": gateway_keys.public_bundle(),
        "rates": None,
        "wallet_timeout_s": WALLET_TIMEOUT_S,
        "tls_cert": (network.layout.gateway / "tls-cert.pem").read_text(),
        "business_day": BUSINESS_DAY,
    }
    partners = [
        {
            "party_id": w.wallet_id,
            "role": "wallet",
            "client_id": f"{w.wallet_id}_CLIENT",
            "currency": w.currency,
            "code_prefixes": [population.wallet(w.wallet_id).payment_code_prefix],
            "agent_url": w.agent_url,
            "tls_cert": (network.layout.agent(w.wallet_id) / "tls-cert.pem").read_text(),
            "keys": w.agent_keys.public_bundle(),
            "risk": _RISK[w.currency],
            "fee_rate": WALLET_SHARE_RATE,
        }
        for w in network.wallets
    ] + [
        {
            "party_id": a.acquirer_id,
            "role": "acquirer",
            "client_id": a.client_id,
            "currency": a.currency,
            "agent_url": f"https://{a.agent_host}",
            "tls_cert": acquirer_certs[a.acquirer_id].read_text(),
            "keys": a.agent_keys.public_bundle(),
            "fee_rate": MERCHANT_DISCOUNT_RATE,
        }
        for a in network.acquirers
    ]
    document = network_document(gateway, partners)
    network.layout.network_file.write_text(json.dumps(document, indent=2) + "\n")


NETWORK_FILE = "network.json"
GATEWAY_DB = "sqlite:///gateway/gateway.db"  # relative to the run directory, where services run


def gateway_db_url(layout: RunLayout) -> str:
    """The gateway's default store, from anywhere (the services' own URL is relative)."""
    return f"sqlite:///{layout.gateway / 'gateway.db'}"
