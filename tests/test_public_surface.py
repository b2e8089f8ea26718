"""The public surface of each bottom package, pinned: a name added or removed here is a
decision, made in this list and in the package's ``__all__`` together."""

from __future__ import annotations

import importlib

import pytest

SURFACE = {
    "blindgate.errors": [
        "EXIT_COMPUTE", "EXIT_FOUND", "EXIT_INPUT", "EXIT_OK", "EXIT_PEER", "BlindgateError",
    ],
    "blindgate.commandline": [
        "EXIT_CODES", "KINDS", "action", "dispatch", "fail", "parser", "run_command", "usage",
    ],
    "blindgate.processes": ["ChildFailed", "ChildSpec", "ProcessGroup"],
    "blindgate.fileio": ["atomic_writer", "write_atomically"],
    "blindgate.net": [
        "BadAddress", "Channel", "ChannelError", "ChannelStats", "ChannelTimeout", "FrameTooLarge",
        "Identity", "Listener", "MalformedFrame", "MemoryChannel", "PeerClosed", "ProtocolMismatch",
        "SocketChannel", "connect", "free_port", "listen", "memory_pair",
    ],
    "blindgate.crypto": [
        "DEFAULT_SUITE", "ED25519", "KINDS", "MLKEM768_X25519", "RSA256", "SUITES", "X25519",
        "CryptoError", "InvalidElement", "InvalidInput", "InvalidSignature", "KeyKind", "KeyStore",
        "KeyStoreError", "OpeningKey", "PublicBundle", "RecipientKey", "SealedValueInvalid",
        "SignatureHeader", "UnknownKey", "is_pseudonym", "is_sealed", "load_rsa_public_key",
        "open_field", "open_fields", "parse_signature_header", "pseudonym", "rsa_private_key_for_sdk",
        "rsa_public_key_for_sdk", "seal_field", "seal_fields", "sign_message", "verify_message",
    ],
    "blindgate.pets.psi": [
        "MODES", "PROTOCOLS", "VERSION", "InputError", "ParameterMismatch", "PsiError", "PsiResult",
        "run_psi",
    ],
    "blindgate.pets.mpc": [
        "DealerTriples", "FixedPoint", "FixedPointOverflow", "MpcError", "Party", "SharedTensor",
        "TripleSource", "serve",
    ],
    "blindgate.pets.ot": [
        "KAPPA", "ExtensionReceiver", "ExtensionSender", "receive_base_ots", "send_base_ots",
    ],
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(SURFACE))
def test_public_surface_is_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(SURFACE[package])
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name} is listed but missing"


def test_star_import_gives_exactly_the_surface() -> None:
    for package, names in SURFACE.items():
        namespace: dict[str, object] = {}
        exec(f"from {package} import *", namespace)  # a fixed module name from the list above
        assert sorted(k for k in namespace if k != "__builtins__") == sorted(names)
