"""What the store commands (gateway, ledger, settle, reconcile, db) share: a parser whose --help
lists their exit statuses, and one way to say why a command stops (one line on stderr).

The statuses are every command's (`blindgate.errors`); for a store command, 3 (a peer failed)
means the store: missing, unreachable, or at a schema that is not this release's.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_CODES = """exit status (errors are one line on stderr):
  0  done
  1  the check found problems (ledger check: a broken invariant; reconcile: breaks)
  2  bad arguments, configuration or input (named in the message); nothing written
  3  the store is missing or unreachable, or its schema is not this release's
     (run `blindgate db upgrade`)"""
_EPILOG: dict[str, Any] = {"epilog": EXIT_CODES, "formatter_class": argparse.RawDescriptionHelpFormatter}


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser whose --help ends with `EXIT_CODES`."""
    return argparse.ArgumentParser(prog=prog, description=description, **_EPILOG)


def action(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str
) -> argparse.ArgumentParser:
    """A subcommand (``blindgate ledger check``) whose --help ends with `EXIT_CODES` too."""
    return sub.add_parser(name, help=text, **_EPILOG)


def fail(prog: str, message: object, code: int) -> int:
    """Say why ``prog`` stops, on stderr, and give its exit status."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code
