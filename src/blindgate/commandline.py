"""The one way a `blindgate` command reads its arguments and fails.

Every subcommand's parser comes from :func:`parser` (or :func:`action` for a subcommand's
own actions), so every ``--help`` ends with `EXIT_CODES`; every failure is one line on
stderr from :func:`fail`, and nothing on stdout. :func:`run_command` runs a command's work
and turns a `BlindgateError` (which states its status in ``exit_status``) or an `OSError`
(a file the caller named that cannot be read or written: bad input) into that line and
its status; anything else is a bug and keeps its traceback. The dispatcher
(`blindgate.cli`) runs every subcommand under it too, so an error that a command does not
catch itself still ends as one line. Bad usage is argparse's own: its usage line and
message on stderr, status 2. Messages never carry a personal value or a key (see
`crypto/errors.py`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from blindgate.errors import EXIT_COMPUTE, EXIT_INPUT, EXIT_OK, EXIT_PEER, BlindgateError

EXIT_CODES = """exit status (errors are one line on stderr; never a key or a data value):
  0  done
  1  the command ran and found something to report (ledger check: a broken invariant;
     reconcile: breaks; audit: personal data)
  2  bad arguments, configuration or input (named in the message); nothing written
  3  a peer, the dealer, the network or the store failed or went quiet; for a store
     command: the store is missing or unreachable, or its schema is not this release's
     (run `blindgate db upgrade`)
  4  the joint computation failed in a way that a new run avoids (run it again)"""
_EPILOG: dict[str, Any] = {"epilog": EXIT_CODES, "formatter_class": argparse.RawDescriptionHelpFormatter}
KINDS = {EXIT_INPUT: "input error", EXIT_PEER: "peer failure", EXIT_COMPUTE: "computation failed"}


def parser(prog: str, description: str, exit_codes: str = EXIT_CODES) -> argparse.ArgumentParser:
    """An argument parser whose --help ends with `EXIT_CODES` (or a command's own, longer table)."""
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=exit_codes,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def action(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str
) -> argparse.ArgumentParser:
    """A subcommand (``blindgate ledger check``) whose --help ends with `EXIT_CODES` too."""
    return sub.add_parser(name, help=text, description=text, **_EPILOG)


def fail(prog: str, message: object, code: int) -> int:
    """Say why ``prog`` stops, on stderr, and give its exit status."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code


def run_command(prog: str, work: Callable[[], int], kinds: Mapping[int, str] = KINDS) -> int:
    """Run ``work``; turn a `BlindgateError` or an `OSError` into one line on stderr and its status.

    The line names the kind of failure (``kinds``: a command with its own table of statuses
    names its own), the error's type and its message.
    """
    try:
        status = work()
        sys.stdout.flush()  # here, where a reader that went away can still be answered quietly
        return status
    except BrokenPipeError:  # `blindgate ... | head`: the reader has what it wanted; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except BlindgateError as exc:
        return fail(prog, _explain(exc, kinds.get(exc.exit_status, "error")), exc.exit_status)
    except OSError as exc:
        return fail(prog, _explain(exc, kinds[EXIT_INPUT]), EXIT_INPUT)


def usage(prog: str, commands: Mapping[str, tuple[str, str]]) -> str:
    """The list of subcommands, one line each, that a dispatcher prints."""
    width = max(map(len, commands))
    lines = [f"usage: {prog} <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in commands.items()]
    lines += ["", f"Run `{prog} <command> --help` for a command's options."]
    return "\n".join(lines)


def dispatch(prog: str, commands: Mapping[str, tuple[str, str]], argv: list[str]) -> int:
    """Run the subcommand ``argv[0]`` names: ``commands`` maps it to (module, one-line help),
    and the module, imported only then, has ``main(argv: list[str]) -> int``. It runs under
    `run_command`, so a failure it does not explain itself still ends as one line."""
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage(prog, commands))
        return 0
    entry = commands.get(argv[0])
    if entry is None:
        return fail(prog, f"unknown command {argv[0]!r}\n\n{usage(prog, commands)}", EXIT_INPUT)
    module = importlib.import_module(entry[0])
    return run_command(f"{prog} {argv[0]}", lambda: int(module.main(argv[1:])))


def _explain(exc: BaseException, kind: str) -> str:
    detail = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
    return f"{kind}: {detail}"


__all__ = ["EXIT_CODES", "KINDS", "action", "dispatch", "fail", "parser", "run_command", "usage"]
