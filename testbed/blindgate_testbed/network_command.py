"""``blindgate-testbed network init|up``: a local network that stays up, from a directory.

    blindgate-testbed network init DIR [--wallets N] [--acquirers M] [--customers C]
                                       [--port-base P] [--agent-host H] [--seed S] [--plaintext]
    blindgate-testbed network up DIR
    blindgate-testbed network compose DIR [--network-dir ./network]

``init`` writes, with the same code as the demo (`blindgate_testbed.network.build_network`):
every party's keys, ``network.json``, each agent's ``agent.json`` (`blindgate agent --config`),
each reference backend's ``backend.json``, the wallets' customers (``population.csv``, the
privacy check's ground truth), ``services.json`` (every process in start order, its command
and where it listens) and, for each acquirer, ``partners/<ID>/backend/sdk-client.json``:
what its own official-SDK client needs (agent URL, client id, both keys in the SDK's format).
Ports are consecutive from ``--port-base`` in a fixed order, so the same counts give the same
files (the compose file in deploy/ is checked against them); the acquirers' agents listen on
``127.0.0.H:443``, ``127.0.0.H+1:443``... because the SDK connects to port 443.

``up`` starts every service of ``services.json`` (`blindgate.processes.ProcessGroup`: each its
own process, logs in its own folder), waits until each answers, publishes every partner's key
bundle and the operator's to the transparency log if it is still empty (the agents seal only to
keys the log vouches for, and verify the gateway only with keys it vouches for), prints where
each listens, and stays up until SIGINT or SIGTERM; then it stops them all. Exit status 0 after a clean stop,
1 when a service fails (its log is named), 2 for a bad directory or a taken address.

``compose`` prints the Docker Compose file that runs the same services from the same files,
the gateway on PostgreSQL (`blindgate_testbed.compose`; ``deploy/compose.yaml`` is its output
for the defaults).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from blindgate.crypto.signatures import rsa_private_key_for_sdk, rsa_public_key_for_sdk
from blindgate.processes import ChildFailed, ProcessGroup
from blindgate_testbed.layout import RunLayout
from blindgate_testbed.network import (
    CONSOLE_PASSWORDS,
    CannotListen,
    DemoNetwork,
    Ports,
    build_network,
)
from blindgate_testbed.plan import Service, read_services
from blindgate_testbed.population import MAX_PARTNERS, generate_population, write_population_csv
from blindgate_testbed.transparency import OVERSIGHT_FILE, publish_once

DEFAULT_PORT_BASE = 18000
SDK_CLIENT_FILE = "sdk-client.json"
ALIVE_POLL_S = 1.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="blindgate-testbed network", description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    init = verbs.add_parser("init", help="write a network directory: keys, network file, agent files")
    init.add_argument("dir", type=Path)
    init.add_argument("--wallets", type=int, default=3, help=f"wallets, 1..{MAX_PARTNERS} (default 3)")
    init.add_argument("--acquirers", type=int, default=2, help=f"acquirers, 1..{MAX_PARTNERS} (default 2)")
    init.add_argument("--customers", type=int, default=20, help="customers per wallet (default 20)")
    init.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE, help="first port (default 18000)")
    init.add_argument(
        "--agent-host", type=int, default=2, help="acquirer agents on 127.0.0.H:443... (default 2)"
    )
    init.add_argument("--seed", type=int, default=20261124, help="seed of the wallets' customers")
    init.add_argument("--plaintext", action="store_true", help="PETs off (for comparison only)")
    up = verbs.add_parser("up", help="start every service of a network directory and keep it up")
    up.add_argument("dir", type=Path)
    compose = verbs.add_parser("compose", help="print the compose file running DIR's services")
    compose.add_argument("dir", type=Path)
    compose.add_argument("--network-dir", default="./network", help="DIR as the compose file names it")
    args = parser.parse_args(argv)
    if args.verb == "init":
        if not (1 <= args.wallets <= MAX_PARTNERS and 1 <= args.acquirers <= MAX_PARTNERS):
            parser.error(f"--wallets and --acquirers are 1..{MAX_PARTNERS}")
        if not 1 <= args.customers <= 100_000 or not 1024 <= args.port_base <= 65000:
            parser.error("--customers 1..100000, --port-base 1024..65000")
        if not 2 <= args.agent_host <= 254 - args.acquirers:
            parser.error("--agent-host leaves no room for the acquirers' 127.0.0.H addresses")
        return init_network(args)
    if args.verb == "compose":
        return print_compose(args.dir, args.network_dir)
    return run_network(args.dir)


def print_compose(root: Path, network_dir: str) -> int:
    from blindgate_testbed.compose import compose_yaml

    try:
        services = read_services(root)
    except ValueError as exc:
        print(f"blindgate-testbed network: {exc}", file=sys.stderr)
        return 2
    print(compose_yaml(services, network_dir), end="")
    return 0


def init_network(args: argparse.Namespace) -> int:
    try:
        layout = RunLayout(args.dir).fresh()
    except FileExistsError as exc:
        print(f"blindgate-testbed network: {exc}", file=sys.stderr)
        return 2
    population = generate_population(
        seed=args.seed, customers_per_wallet=args.customers, wallets=args.wallets, acquirers=args.acquirers
    )
    write_population_csv(population, layout.population_csv)
    network = build_network(
        layout,
        population,
        plaintext=args.plaintext,
        first_agent_host=args.agent_host,
        ports=Ports(args.port_base),
        check_listen=False,  # checked by `up`, where it matters
    )
    write_sdk_client_files(network)
    print(f"wrote {layout.root}/: {len(network.plan)} services; start them with")
    print(f"  blindgate-testbed network up {layout.root}")
    return 0


def write_sdk_client_files(network: DemoNetwork) -> None:
    """Each acquirer's ``sdk-client.json``: DefaultAlipayClient's four arguments and the notify URL.

    ``merchant_private_key`` is base64 PKCS#1 DER with no PEM lines (the SDK adds them);
    ``alipay_public_key`` is base64 SubjectPublicKeyInfo DER of the agent's RSA key: the
    agent stands where Alipay+ stood, so the SDK checks the agent's answers with it.
    """
    for acquirer in network.acquirers:
        path = network.layout.backend(acquirer.acquirer_id) / SDK_CLIENT_FILE
        document = {
            "gateway_url": f"https://{acquirer.agent_host}",
            "client_id": acquirer.client_id,
            "merchant_private_key": rsa_private_key_for_sdk(acquirer.merchant_key),
            "alipay_public_key": rsa_public_key_for_sdk(acquirer.agent_keys.rsa_key().public_key()),
            "payment_notify_url": acquirer.notify_url,
        }
        path.touch(mode=0o600)  # a private key: the owner's only
        path.write_text(json.dumps(document, indent=2) + "\n")


def run_network(root: Path, banner: Callable[[list[Service]], None] | None = None) -> int:
    """Run ``root``'s services until SIGINT/SIGTERM; ``banner`` (default: every address) is
    printed once all of them answer."""
    try:
        services = read_services(root)
        _check_addresses(services)
    except (ValueError, CannotListen) as exc:
        print(f"blindgate-testbed network: {exc}", file=sys.stderr)
        return 2
    try:
        with ProcessGroup() as group:
            for service in services:
                group.start(service.spec(root.resolve()).child())
            group.wait_ready()
            if (root / OVERSIGHT_FILE).exists():  # partners' key bundles, before any traffic
                publish_once(root)
            (banner or _print_addresses)(services)
            while True:  # until SIGINT, or SIGTERM (the group makes it KeyboardInterrupt)
                time.sleep(ALIVE_POLL_S)
                group.check_alive()
    except ChildFailed as exc:
        print(f"blindgate-testbed network: {exc}; every service was stopped", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("network stopped", flush=True)
        return 0


def _check_addresses(services: list[Service]) -> None:
    """Fail before starting anything when an acquirer agent's address (port 443) is taken.

    The probe sets SO_REUSEADDR as uvicorn does, so the connections a stopped agent left in
    TIME_WAIT (a network started again at once, as `demo --serve` does) are no obstacle.
    """
    for service in services:
        where = urlsplit(service.listens)
        if where.scheme == "https" and where.hostname and (where.port or 443) == 443:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((where.hostname, 443))
                except OSError as exc:
                    raise CannotListen(
                        f"cannot listen on {where.hostname}:443 ({exc.strerror}): is another network, demo "
                        "or test running? (run as root or grant CAP_NET_BIND_SERVICE for port 443)"
                    ) from None


def console_of(services: list[Service]) -> Service | None:
    return next((service for service in services if service.name == "console"), None)


def _print_addresses(services: list[Service]) -> None:
    width = max(len(service.name) for service in services)
    print(f"network up: {len(services)} services")
    for service in services:
        print(f"  {service.name.ljust(width)}  {service.listens}  (log {service.log})")
    if console_of(services) is not None:
        print(f"console passwords: {CONSOLE_PASSWORDS} (the operator's, the regulator's, each partner's)")
    print("stop with Ctrl-C or SIGTERM", flush=True)
