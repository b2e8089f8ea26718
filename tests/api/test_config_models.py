"""The configuration files' typed models: their JSON Schemas are checked in as generated, every
file the tools write is valid under them, and a refusal names the field, never the value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from blindgate.agent.commands import load_agent
from blindgate.api.config_models import (
    MODELS,
    AgentFile,
    FieldPolicyFile,
    NetworkFile,
    json_schema,
    validated,
)
from blindgate.api.network import ConfigError, parse_network
from blindgate_testbed.network_command import main as network_main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schema"
POLICY = Path(__file__).resolve().parents[2] / "src" / "blindgate" / "agent" / "field_policy.json"
SECRET = "+6591234567"  # a value that must never show in a message


@pytest.mark.parametrize("name", list(MODELS))
def test_the_checked_in_schemas_are_the_generated_ones(name: str) -> None:
    assert json.loads((DOCS / f"{name}.json").read_text()) == json_schema(name), (
        "run: python -m blindgate.api.config_models docs/schema"
    )


@pytest.fixture(scope="module")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cfg") / "net"
    assert network_main(["init", str(root), "--wallets", "2", "--acquirers", "1", "--customers", "1"]) == 0
    return root


def test_every_file_network_init_writes_and_the_shipped_policy_are_valid(network_dir: Path) -> None:
    validated(NetworkFile, json.loads((network_dir / "network.json").read_text()), "network")
    agents = sorted(network_dir.glob("partners/*/agent/agent.json"))
    assert len(agents) == 3
    for path in agents:
        validated(AgentFile, json.loads(path.read_text()), "agent")
    validated(FieldPolicyFile, json.loads(POLICY.read_text()), "policy")


def _network(network_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((network_dir / "network.json").read_text())
    return document


@pytest.mark.parametrize(
    ("where", "loader_refuses"),
    [("currency", True), ("fee_rate", True), ("role", True), ("agent_url", False)],
)
def test_a_refusal_names_the_field_not_the_value(network_dir: Path, where: str, loader_refuses: bool) -> None:
    document = _network(network_dir)
    document["partners"][0][where] = SECRET
    with pytest.raises(ConfigError) as refused:
        validated(NetworkFile, document, "the network file")
    assert f"partners.0.{where}" in str(refused.value) and SECRET not in str(refused.value)
    if loader_refuses:  # the loader refuses it too (for a URL, the model is the stricter)
        with pytest.raises(ConfigError):
            parse_network(document)


def test_the_model_and_the_loader_agree_on_the_order_code_ttl(network_dir: Path) -> None:
    for ttl, accepted in [(1800, True), (1801, False), (0, False)]:
        document = _network(network_dir)
        document["gateway"]["order_code_ttl_s"] = ttl
        for check in (lambda d: validated(NetworkFile, d, "network"), parse_network):
            if accepted:
                check(document)
            else:
                with pytest.raises(ConfigError):
                    check(document)


def test_blindgate_agent_refuses_an_agent_file_with_an_unknown_field(
    network_dir: Path, tmp_path: Path
) -> None:
    source = next(network_dir.glob("partners/*/agent/agent.json"))
    config = json.loads(source.read_text())
    config["backend"]["client_id"] = SECRET + " x"  # not an id: refused, and not echoed
    bad = source.parent / "bad-agent.json"
    bad.write_text(json.dumps(config))
    with pytest.raises(ConfigError) as refused:
        load_agent(bad)
    assert "backend.client_id" in str(refused.value) and SECRET not in str(refused.value)
    config = json.loads(source.read_text()) | {"lisen": "0.0.0.0"}  # a typo is not ignored
    bad.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="lisen"):
        load_agent(bad)


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("refund_window_days", 0, True),
        ("refund_window_days", 3660, True),
        ("refund_window_days", 3661, False),
        ("refund_window_days", -1, False),
        ("retention_days", 1.5, False),
        ("purge_every_s", 0, False),
        ("purge_batch", 10_000, True),
        ("purge_batch", 10_001, False),
        ("purge_batch", True, False),
    ],
)
def test_the_model_and_the_loader_agree_on_the_retention_windows(
    network_dir: Path, field: str, value: object, accepted: bool
) -> None:
    assert parse_network(_network(network_dir)).gateway.retention.refund_window_days == 365  # the default
    document = _network(network_dir)
    document["gateway"]["retention"] = {field: value}
    if accepted:
        validated(NetworkFile, document, "network")
        assert getattr(parse_network(document).gateway.retention, field) == value
        return
    with pytest.raises(ConfigError):
        parse_network(document)
    if value is not True:  # the model's lax mode may read True as 1; the loader is the authority
        with pytest.raises(ConfigError):
            validated(NetworkFile, document, "network")
