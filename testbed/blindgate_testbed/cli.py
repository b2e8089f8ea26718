"""The `blindgate-testbed` command: the demo network and its traffic (not the product).

Each subcommand is a module with ``main(argv: list[str]) -> int``, imported when it runs.
Exit codes: 0 done, 1 a check failed, 2 bad arguments or configuration.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("blindgate_testbed.demo", "run the whole network on loopback and drive payments through it"),
    "network": ("blindgate_testbed.network_command", "write a network directory (init) and run it (up)"),
    "backend": ("blindgate_testbed.partner_server", "serve one reference partner backend from its file"),
    "plaintext": ("blindgate_testbed.plaintext", "PETs off, for comparison only: the gateway or an agent"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: blindgate-testbed <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    entry = COMMANDS.get(args[0])
    if entry is None:
        print(f"blindgate-testbed: unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    result: int = importlib.import_module(entry[0]).main(args[1:])
    return result


if __name__ == "__main__":
    sys.exit(main())
