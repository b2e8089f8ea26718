"""The `blindgate` command.

Each subcommand lives beside the part it drives, as a module with a
``main(argv: list[str]) -> int`` function; this file only dispatches, and imports a
subcommand's module when that subcommand runs, so `blindgate psi` never pays for the
gateway's imports and the other way round (`blindgate.commandline.dispatch`). Every
subcommand fails the one way `blindgate.commandline` says: one line on stderr, the exit
statuses of its --help.
"""

from __future__ import annotations

import sys

from blindgate import commandline

# name -> (module, one-line help). Keep in the order a newcomer meets them.
COMMANDS: dict[str, tuple[str, str]] = {
    "gateway": ("blindgate.gateway.commands", "serve the gateway"),
    "agent": ("blindgate.agent.commands", "serve a partner's agent"),
    "keys": ("blindgate.crypto.commands", "create and rotate a party's keys"),
    "db": (
        "blindgate.storage.commands",
        "upgrade the gateway's store, show its schema revision, purge ended payments' payer data",
    ),
    "ledger": ("blindgate.ledger.commands", "check the gateway's ledger, close a business day"),
    "settle": ("blindgate.settlement.commands", "write a business day's settlement files"),
    "reconcile": (
        "blindgate.settlement.reconcile_command",
        "compare a partner's records with settlement files",
    ),
    "log": ("blindgate.translog.commands", "the transparency log: serve, witness, monitor, verify, audit"),
    "keygen": ("blindgate.pets.keygen", "create a PET party's TLS identity (psi, train, predict)"),
    "sample-data": ("blindgate.pets.sample_data", "write a small synthetic wallet/network pair of files"),
    "audit": ("blindgate.audit.commands", "privacy check of everything the gateway wrote"),
    "console": ("blindgate.console.commands", "the web console: payments, days, settlement, privacy"),
    "psi": ("blindgate.pets.psi.commands", "private set intersection between two parties"),
    "train": ("blindgate.pets.ml.train_command", "train a model jointly on secret shares"),
    "predict": ("blindgate.pets.ml.predict_command", "score rows with a jointly held model"),
}


def usage() -> str:
    return commandline.usage("blindgate", COMMANDS)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--version"]:
        from blindgate import __version__

        print(__version__)
        return 0
    return commandline.dispatch("blindgate", COMMANDS, args)


if __name__ == "__main__":
    sys.exit(main())
