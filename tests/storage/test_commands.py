"""The store commands' exit codes and messages (`blindgate.commandline.EXIT_CODES`): errors on
stderr, nothing on stdout, and the code the --help epilog documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from blindgate.cli import main as blindgate
from blindgate.commandline import EXIT_CODES
from blindgate.errors import EXIT_FOUND, EXIT_INPUT, EXIT_OK, EXIT_PEER
from blindgate.storage import migrate
from tests.gateway.harness import build
from tests.storage.test_migrations import old_sqlite_store

SETTLE = ["settle", "--date", "2026-11-24", "--out", "settlement"]


def test_exit_codes_are_what_the_help_says() -> None:
    assert (EXIT_OK, EXIT_FOUND, EXIT_INPUT, EXIT_PEER) == (0, 1, 2, 3)


@pytest.mark.parametrize(
    "command", [["gateway"], ["ledger"], ["ledger", "check"], ["settle"], ["reconcile"], ["db"]]
)
def test_each_store_command_documents_its_exit_codes(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        blindgate([*command, "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert EXIT_CODES in shown and "the store is missing or unreachable" in EXIT_CODES


def test_a_store_of_the_previous_release_is_refused_until_upgraded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    old = old_sqlite_store(tmp_path)
    for command in (["ledger", "check"], SETTLE):
        assert blindgate([*command, "--db", old]) == EXIT_PEER
        said = capsys.readouterr()
        assert said.out == "" and "run `blindgate db upgrade`" in said.err
    assert blindgate(["db", "current", "--db", old]) == EXIT_PEER
    assert json.loads(capsys.readouterr().out) == {"store": None, "release": migrate.head()}
    assert blindgate(["db", "upgrade", "--db", old]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"store": migrate.head(), "release": migrate.head()}
    assert blindgate(["ledger", "check", "--db", old]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["ok"] is True


@pytest.mark.parametrize(
    ("db", "code", "said"),
    [
        ("sqlite:///{tmp}/missing.db", EXIT_PEER, "no store at"),
        ("nosuchdatabase://x/y", EXIT_INPUT, "names no database"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", EXIT_PEER, "(OperationalError)"),
    ],
)
@pytest.mark.parametrize("command", [["ledger", "check"], SETTLE, ["db", "current"]])
def test_a_store_that_is_not_there_is_an_error_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db: str, code: int, said: str, command: list[str]
) -> None:
    assert blindgate([*command, "--db", db.format(tmp=tmp_path)]) == code
    out = capsys.readouterr()
    assert out.out == "" and said in out.err and "Traceback" not in out.err
    assert not (tmp_path / "missing.db").exists()  # a typo in a path leaves no empty store behind


def test_no_store_named_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BLINDGATE_DB", raising=False)
    for command in (["ledger", "check"], SETTLE, ["db", "upgrade"]):
        assert blindgate(command) == EXIT_INPUT
        out = capsys.readouterr()
        assert out.out == "" and "blindgate demo" in out.err


def test_the_gateway_upgrades_an_old_store_and_refuses_a_newer_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from blindgate.net import serving

    build(tmp_path)  # network.json and the gateway's keys
    served: list[object] = []
    monkeypatch.setattr(serving, "serve", lambda app, *_, **__: served.append(app))
    args = ["gateway", "--network", str(tmp_path / "network.json"), "--keys", str(tmp_path / "gateway-keys")]
    old = old_sqlite_store(tmp_path)
    assert blindgate([*args, "--db", old]) == EXIT_OK and len(served) == 1
    engine = migrate.open_engine(old)
    assert migrate.current(engine) == migrate.head()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'later'"))
    engine.dispose()
    assert blindgate([*args, "--db", old]) == EXIT_PEER and len(served) == 1
    out = capsys.readouterr()
    assert out.out == "" and "later release" in out.err
    assert blindgate([*args, "--db", old, "--workers", "2"]) == EXIT_PEER
    assert blindgate(["gateway", "--network", str(tmp_path / "nope.json"), "--keys", "k"]) == EXIT_INPUT
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("blindgate gateway:")
