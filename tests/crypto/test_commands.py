"""`blindgate keys`: create, rotate and publish, with clear one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blindgate.cli import main as cli
from blindgate.crypto import KeyStore, PublicBundle


def test_create_rotate_public(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "wallet-b")
    assert cli(["keys", "create", store, "--party", "wallet-b", "--suite", "mlkem768x25519"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert PublicBundle.from_json(created).recipient_key.suite == "mlkem768x25519"

    assert cli(["keys", "rotate", store, "seal", "--suite", "x25519"]) == 0
    rotated = capsys.readouterr()
    assert "version 2" in rotated.err
    assert json.loads(rotated.out)["seal"]["version"] == 2

    assert cli(["keys", "public", store]) == 0
    published = json.loads(capsys.readouterr().out)
    assert published == KeyStore(store).public_bundle()
    assert published["seal"]["suite"] == "x25519"
    assert "private" not in json.dumps(published)


def test_errors_are_one_line_on_stderr_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["keys", "public", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("blindgate keys: ") and err.count("\n") == 1 and "Traceback" not in err
    assert cli(["keys", "create", str(tmp_path / "s"), "--party", "bad.id"]) == 2
    assert "key id" in capsys.readouterr().err
    assert cli(["keys", "create", str(tmp_path / "t"), "--party", "t"]) == 0
    capsys.readouterr()
    assert cli(["keys", "create", str(tmp_path / "t"), "--party", "t"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli(["keys", "rotate", str(tmp_path / "t"), "rsa", "--suite", "x25519"]) == 2
    assert "only seal keys" in capsys.readouterr().err


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli(["keys", "rotate", "dir", "aes"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_signing_only_store_for_the_gateway(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["keys", "create", str(tmp_path / "gw"), "--party", "gateway", "--signing-only"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert "seal" not in bundle and set(bundle) == {"format", "party_id", "rsa", "ed25519"}
    assert cli(["keys", "rotate", str(tmp_path / "gw"), "seal"]) == 2
    assert "holds no seal keys" in capsys.readouterr().err
