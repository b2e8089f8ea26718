"""PETs off, for comparison only: the gateway and the agents built to pass payer fields in clear.

The product has no such switch (`blindgate.api.network` refuses one in the network file): the
benchmarks and the tests that measure what sealing costs build the same apps from code, with a
field policy that names every field clear (`PASS_THROUGH`) and a gateway that accepts payer
fields in clear (``require_sealed=False``).

    python -m blindgate_testbed.plaintext gateway NETWORK KEYS DB HOST PORT TLS_CERT TLS_KEY
    python -m blindgate_testbed.plaintext agent AGENT_FILE
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from blindgate.agent.commands import load_agent, serve
from blindgate.agent.policy import FieldPolicy
from blindgate.api.network import load_network
from blindgate.crypto.keystore import KeyStore
from blindgate.gateway.app import create_gateway_app
from blindgate.net.serving import serve as serve_bounded

# Every name starts with "": every field is clear.
PASS_THROUGH = FieldPolicy(frozenset(), ("",))


def main(argv: list[str]) -> int:
    if argv[:1] == ["gateway"] and len(argv) == 8:
        network, keys, db, host, port, cert, key = argv[1:]
        app: Any = create_gateway_app(load_network(network), KeyStore(keys), db, require_sealed=False)
        serve_bounded(app, host, int(port), ssl_certfile=cert, ssl_keyfile=key)
        return 0
    if argv[:1] == ["agent"] and len(argv) == 2:
        path = Path(argv[1])
        app, config = load_agent(path, policy=PASS_THROUGH)
        serve(app, config, path.parent)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
