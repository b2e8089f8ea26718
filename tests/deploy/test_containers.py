"""The container files, checked without Docker (absent here): deploy/compose.yaml runs exactly the
services `blindgate-testbed network init` writes, with the same commands and configuration files
(the gateway on PostgreSQL), and the Dockerfile's instructions are sound as far as a linter can see."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from blindgate.cli import COMMANDS as BLINDGATE_COMMANDS
from blindgate_testbed.cli import COMMANDS as TESTBED_COMMANDS
from blindgate_testbed.compose import MOUNT, POSTGRES_URL, STORE_READERS, compose_document, service_key
from blindgate_testbed.network_command import main as network_main
from blindgate_testbed.plan import Service, read_services

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Service]]:
    root = tmp_path_factory.mktemp("deploy") / "network"
    assert network_main(["init", str(root)]) == 0  # the defaults, as deploy/compose.yaml's header says
    return root, read_services(root)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def test_the_compose_file_is_the_one_generated_from_network_init(
    compose: dict[str, Any], network: tuple[Path, list[Service]]
) -> None:
    generated = compose_document(network[1])
    assert compose["services"] == generated["services"], "regenerate: blindgate-testbed network compose DIR"


def test_every_service_runs_the_same_command_on_the_same_files(
    compose: dict[str, Any], network: tuple[Path, list[Service]]
) -> None:
    root, services = network
    assert set(compose["services"]) == {"postgres"} | {service_key(s) for s in services}
    images = {compose["services"][service_key(s)]["image"] for s in services}
    assert len(images) == 1  # one image
    for service in services:
        entry = compose["services"][service_key(service)]
        program = entry.get("entrypoint", ["blindgate"])[0]
        assert program == service.command[0]
        command = entry["command"]
        commands = BLINDGATE_COMMANDS if program == "blindgate" else TESTBED_COMMANDS
        assert command[0] in commands  # a subcommand the image's program has
        expected = list(service.command[1:])
        if expected[0] in STORE_READERS:  # the gateway's store, and the console reading it
            at = expected.index("--db") + 1
            assert command[at] == POSTGRES_URL
            expected[at] = POSTGRES_URL
        assert command == expected
        assert entry["working_dir"] == MOUNT and entry["volumes"] == [f"./network:{MOUNT}"]
        assert entry["network_mode"] == "host"  # the network file's loopback addresses hold
        for before, word in zip(["", *command], command, strict=False):  # every input file init wrote
            path = word.rsplit(",", 1)[-1]  # a witness is URL,KEYFILE
            if before != "--state" and (
                path.endswith((".json", ".pem", ".pub", "/keys")) or path == "reports"
            ):
                assert (root / path).exists(), word
        build = entry["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_the_gateway_store_is_the_compose_postgres(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    env, command = postgres["environment"], postgres["command"]
    port = command[command.index("-p") + 1]
    user, password, database = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
    assert f"postgresql+psycopg://{user}:{password}@127.0.0.1:{port}/{database}" == POSTGRES_URL
    assert compose["services"]["gateway"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert port in postgres["healthcheck"]["test"]
    assert "pgdata" in compose["volumes"]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_the_dockerfile_lints_clean() -> None:
    instructions = _instructions()
    known = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "ENTRYPOINT", "CMD", "ARG", "LABEL", "EXPOSE", "USER"}
    assert {keyword for keyword, _ in instructions} <= known
    assert instructions[0][0] == "FROM"
    base = instructions[0][1]
    assert ":" in base and not base.endswith(":latest")  # a pinned tag (hadolint DL3006/DL3007)
    ignored = (ROOT / ".dockerignore").read_text().split()
    for keyword, rest in instructions:
        if keyword == "WORKDIR":
            assert rest.startswith("/")  # DL3000
        if keyword == "COPY":
            *sources, _target = shlex.split(rest)
            for source in sources:
                assert (ROOT / source).exists() and source not in ignored, source
        if keyword == "RUN" and "pip install" in rest:
            assert "--no-cache-dir" in rest  # DL3042
            for target in shlex.split(rest.split("pip install", 1)[1]):
                if not target.startswith("-"):
                    assert (ROOT / target / "pyproject.toml").exists(), target
        if keyword in {"ENTRYPOINT", "CMD"}:
            assert isinstance(json.loads(rest), list)  # exec form: signals reach the process (DL3025)
    entrypoint = next(json.loads(rest) for keyword, rest in instructions if keyword == "ENTRYPOINT")
    assert entrypoint == ["blindgate"]
    # The programs the image and the compose file run are the distributions' console scripts.
    assert 'blindgate = "blindgate.cli:main"' in (ROOT / "pyproject.toml").read_text()
    assert (
        'blindgate-testbed = "blindgate_testbed.cli:main"'
        in (ROOT / "testbed" / "pyproject.toml").read_text()
    )
