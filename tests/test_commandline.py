"""Every `blindgate` subcommand fails the one way: bad usage and bad input each end in lines on
stderr, no traceback, nothing on stdout, and the exit status its --help documents."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from blindgate.api.network import network_document
from blindgate.cli import COMMANDS
from blindgate.cli import main as blindgate
from blindgate.commandline import EXIT_CODES, run_command
from blindgate.crypto import KeyStore
from blindgate.errors import EXIT_INPUT, EXIT_PEER, BlindgateError
from blindgate.translog.commands import LOG_EXIT_CODES

MISSING = "{tmp}/missing"
# subcommand -> (arguments that reach the command's own work with an input it must refuse,
# the status that --help documents for it)
BAD_INPUT: dict[str, tuple[list[str], int]] = {
    "gateway": (["--network", f"{MISSING}/network.json", "--keys", MISSING, "--db", "sqlite://"], EXIT_INPUT),
    "agent": (["--config", f"{MISSING}/agent.json"], EXIT_INPUT),
    "keys": (["public", MISSING], EXIT_INPUT),
    "db": (["current", "--db", "sqlite:///{tmp}/missing/store.db"], EXIT_PEER),
    "ledger": (["check", "--db", "sqlite:///{tmp}/missing/store.db"], EXIT_PEER),
    "settle": (["--date", "2026-11-24", "--out", "{tmp}/out", "--db", "sqlite:///{tmp}/missing/s.db"],
               EXIT_PEER),
    "reconcile": (["--partner", "P", "--records", f"{MISSING}.csv", "--settlement-dir", MISSING], EXIT_INPUT),
    "log": (["verify", "{tmp}/not-json.receipt"], EXIT_INPUT),
    "keygen": (["--name", "not a name", "--out", "{tmp}/identity"], EXIT_INPUT),
    "sample-data": (["--rows", "3", "--out", "{tmp}/data"], EXIT_INPUT),
    "audit": (["privacy", MISSING, f"{MISSING}.csv"], EXIT_INPUT),
    "console": (["serve", "--db", "sqlite://", "--users", f"{MISSING}/users.json"], EXIT_INPUT),
    "psi": (["--role", "client", "--connect", "127.0.0.1:9", "--identity", MISSING, "--peer-cert",
             f"{MISSING}.pem", "--input", f"{MISSING}.csv", "--key", "id", "--out", "{tmp}/out.csv"],
            EXIT_INPUT),
    "train": (["--role", "wallet", "--data", f"{MISSING}.csv", "--id", "id", "--label", "y", "--out",
               "{tmp}/out", "--listen", "127.0.0.1:9", "--identity", MISSING, "--peer-cert",
               f"{MISSING}.pem"],
              EXIT_INPUT),
    "predict": (["--role", "network", "--model", f"{MISSING}/model.json", "--data", f"{MISSING}.csv", "--id",
                 "id", "--out", "{tmp}/out"], EXIT_INPUT),
}  # fmt: skip
# More of a subcommand's actions, where they read other inputs.
MORE_BAD_INPUT: list[tuple[list[str], int]] = [
    (["audit", "linkage", "--db", "sqlite:///{tmp}/missing/store.db", "--network", "{tmp}/network.json",
      "--payers", "{tmp}/payers.csv"], EXIT_PEER),
    (["audit", "linkage", "--db", "no-such-driver://", "--network", "{tmp}/network.json",
      "--payers", "{tmp}/payers.csv"], EXIT_INPUT),
    (["audit", "no-such-check"], EXIT_INPUT),
    (["log", "verify", f"{MISSING}.receipt"], 8),  # its own table: a file it cannot read
    (["sample-data", "--out", "{tmp}/a-file/data"], EXIT_INPUT),
]  # fmt: skip
HELP_OF = {"log": LOG_EXIT_CODES}
# The agent's parser is the partner's code (agent/commands.py); its --help is its own.
@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """`blindgate gateway` configures logging before it reads its files; undo that."""
    logger = logging.getLogger("blindgate")
    handlers, level = logger.handlers[:], logger.level
    yield
    logger.handlers[:], logger.level = handlers, level


@pytest.fixture(scope="module")
def network_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid network file, so that `audit linkage` gets as far as the store."""
    from tests.gateway.harness import GATEWAY

    root = tmp_path_factory.mktemp("network")
    gateway = {
        "party_id": GATEWAY,
        "url": "http://gateway.test",
        "keys": KeyStore.create(root / "keys", GATEWAY, signing_only=True).public_bundle(),
    }
    (root / "network.json").write_text(json.dumps(network_document(gateway, [])))
    return root / "network.json"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = blindgate(argv)
    except SystemExit as done:  # argparse's own way out
        status = done.code if isinstance(done.code, int) else EXIT_INPUT
    out, err = capsys.readouterr()
    return status, out, err


def test_every_subcommand_is_walked() -> None:
    assert set(BAD_INPUT) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_usage_is_refused_on_stderr_with_status_2(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run([command, "--no-such-option"], capsys)
    assert (status, out) == (EXIT_INPUT, "")
    assert err.strip() and "Traceback" not in err


WALK = [([command, *argv], status) for command, (argv, status) in BAD_INPUT.items()] + MORE_BAD_INPUT


@pytest.mark.parametrize(("argv", "documented"), WALK, ids=[" ".join(argv[:2]) for argv, _ in WALK])
def test_bad_input_is_one_line_on_stderr_with_the_documented_status(
    argv: list[str], documented: int, network_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "not-json.receipt").write_text("not json")
    (tmp_path / "a-file").write_text("")
    (tmp_path / "payers.csv").write_text("payment_id,payer\n")
    (tmp_path / "network.json").write_bytes(network_file.read_bytes())
    status, out, err = _run([arg.replace("{tmp}", str(tmp_path)) for arg in argv], capsys)
    assert (status, out) == (documented, "")
    assert err.startswith(f"blindgate {argv[0]}") and "Traceback" not in err
    assert err.count("\n") == 1 or argv[1] == "no-such-check"  # that one lists the checks after
    assert not (tmp_path / "missing").exists()  # a refused input writes nothing


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_help_documents_the_exit_statuses(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run([command, "--help"], capsys)
    if command == "audit":  # a dispatcher over its checks: each check's --help documents them
        assert status == 0 and "privacy" in out
        status, out, _ = _run([command, "privacy", "--help"], capsys)
    assert status == 0 and HELP_OF.get(command, EXIT_CODES) in out


def test_an_error_a_subcommand_leaves_unexplained_is_still_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import blindgate.pets.sample_data as sample_data

    class Refused(BlindgateError):
        exit_status = EXIT_PEER

    def refuse(argv: list[str]) -> int:
        raise Refused("the peer went away")

    monkeypatch.setattr(sample_data, "main", refuse)
    status, out, err = _run(["sample-data"], capsys)
    assert (status, out) == (EXIT_PEER, "")
    assert err == "blindgate sample-data: peer failure: Refused: the peer went away\n"


def test_a_bug_keeps_its_traceback() -> None:
    def bug() -> int:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_command("blindgate x", bug)


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """`blindgate ... | head`: no traceback, no 'Exception ignored' at exit."""
    import subprocess
    import sys

    program = (
        "import sys\n"
        "from blindgate.commandline import run_command\n"
        "def lines():\n"
        "    for _ in range(200_000):\n"
        "        print('x' * 80)\n"
        "    return 0\n"
        "sys.exit(run_command('blindgate test', lines))\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert writer.stdout is not None and writer.stderr is not None
    writer.stdout.readline()
    writer.stdout.close()  # as `head -1` does
    errors = writer.stderr.read().decode()
    assert writer.wait(timeout=60) == 0
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors
