"""One error root, a root per bottom package, and the commands' shared exit statuses."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import blindgate
from blindgate.cli import main as cli
from blindgate.commandline import EXIT_CODES, run_command
from blindgate.crypto import CryptoError
from blindgate.errors import EXIT_COMPUTE, EXIT_INPUT, EXIT_PEER, BlindgateError
from blindgate.net import ChannelError
from blindgate.pets.ml.errors import MlError, TruncationFailure
from blindgate.pets.mpc.errors import MpcError
from blindgate.pets.psi.errors import PsiError

ROOTS = {
    "blindgate.net": ChannelError,
    "blindgate.crypto": CryptoError,
    "blindgate.pets.psi": PsiError,
    "blindgate.pets.mpc": MpcError,
    "blindgate.pets.ml": MlError,
}


def _modules_under(package: str) -> list[str]:
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        names.append(info.name)
    return names


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_error_a_package_defines_is_under_its_root(package: str) -> None:
    defined = [
        value
        for name in _modules_under(package)
        for value in vars(importlib.import_module(name)).values()
        if inspect.isclass(value) and issubclass(value, Exception) and value.__module__ == name
    ]
    assert defined, f"{package} defines no error type"
    strays = [error.__qualname__ for error in defined if not issubclass(error, ROOTS[package])]
    assert strays == []
    assert issubclass(ROOTS[package], BlindgateError)


def test_pets_ot_defines_no_error_of_its_own() -> None:
    # OT raises only the channel's errors (a bad element from the peer is a MalformedFrame)
    # and ValueError for a caller's programming mistake, so it needs no root.
    for name in _modules_under("blindgate.pets.ot"):
        module = importlib.import_module(name)
        assert not [v for v in vars(module).values() if inspect.isclass(v) and issubclass(v, Exception)
                    and v.__module__ == name]  # fmt: skip


def test_run_command_maps_each_error_to_its_status_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    def fail(error: BaseException) -> int:
        raise error

    cases = [
        (CryptoError("bad key id"), EXIT_INPUT, "input error: CryptoError: bad key id"),
        (ChannelError("peer left"), EXIT_PEER, "peer failure: ChannelError: peer left"),
        (TruncationFailure("out of range"), EXIT_COMPUTE, "computation failed: TruncationFailure"),
        (FileNotFoundError(2, "No such file"), EXIT_INPUT, "input error: FileNotFoundError"),
    ]
    for error, status, words in cases:
        assert run_command("blindgate x", lambda error=error: fail(error)) == status  # type: ignore[misc]
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"blindgate x: {words}") and err.count("\n") == 1
    with pytest.raises(KeyError):  # a bug is not an error to explain: it keeps its traceback
        run_command("blindgate x", lambda: fail(KeyError("bug")))


@pytest.mark.parametrize(
    ("argv", "status", "words"),
    [
        (["keys", "public", "/nonexistent/store"], EXIT_INPUT, "blindgate keys: input error"),
        (["keys", "create", "{tmp}/s", "--party", "bad.id"], EXIT_INPUT, "key id"),
        (["psi", "--role", "client", "--connect", "nowhere", "--identity", "{tmp}", "--peer-cert",
          "{tmp}/none.pem", "--input", "{tmp}/none.csv", "--key", "id", "--out", "{tmp}/out.csv"],
         EXIT_INPUT, "blindgate psi: input error"),
        (["train", "--role", "wallet", "--data", "{tmp}/w.csv"], EXIT_INPUT,
         "blindgate train: input error: SettingsError: --data, --id and --out are required"),
        (["predict", "--role", "network", "--model", "{tmp}/model.json", "--data", "{tmp}/n.csv",
          "--id", "id", "--out", "{tmp}/out"], EXIT_INPUT,
         "blindgate predict: input error: DataError: cannot read"),
    ],
)  # fmt: skip
def test_commands_print_errors_on_stderr_with_the_documented_status(
    argv: list[str], status: int, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli([arg.replace("{tmp}", str(tmp_path)) for arg in argv]) == status
    out, err = capsys.readouterr()
    assert out == "" and words in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("command", ["keys", "psi", "train", "predict"])
def test_each_command_documents_the_exit_statuses(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli([command, "--help"])
    assert EXIT_CODES in capsys.readouterr().out


def test_the_root_is_the_one_blindgate_names() -> None:
    assert blindgate.errors.BlindgateError is BlindgateError
