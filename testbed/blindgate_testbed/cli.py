"""The `blindgate-testbed` command: the demo network and its traffic (not the product).

Each subcommand is a module with ``main(argv: list[str]) -> int``, imported when it runs
(`blindgate.commandline.dispatch`, as for `blindgate`). Exit codes: 0 done, 1 a check
failed, 2 bad arguments or configuration.
"""

from __future__ import annotations

import sys

from blindgate.commandline import dispatch

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("blindgate_testbed.demo", "run the whole network on loopback and drive payments through it"),
    "network": ("blindgate_testbed.network_command", "write a network directory (init) and run it (up)"),
    "backend": ("blindgate_testbed.partner_server", "serve one reference partner backend from its file"),
    "plaintext": ("blindgate_testbed.plaintext", "PETs off, for comparison only: the gateway or an agent"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch("blindgate-testbed", COMMANDS, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
