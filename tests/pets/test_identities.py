"""Identities: `blindgate keygen` names each party; a dealer pins two certificates whatever their names."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from blindgate.net import ChannelError, Identity, Listener, connect


def _blindgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blindgate.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def _name(cert: Path) -> str:
    subject = x509.load_pem_x509_certificate(cert.read_bytes()).subject
    return str(subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_keygen_names_each_party_and_never_overwrites(tmp_path: Path) -> None:
    made = _blindgate("keygen", "--name", "wallet", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "keys/wallet/cert.pem" in made.stdout and "fingerprint" in made.stdout
    assert _name(tmp_path / "keys" / "wallet" / "cert.pem") == "wallet"
    assert (tmp_path / "keys" / "wallet" / "key.pem").stat().st_mode & 0o077 == 0  # private
    again = _blindgate("keygen", "--name", "wallet", cwd=tmp_path)
    assert again.returncode == 2 and "not overwriting" in again.stderr
    # `psi keygen` is the same, named after its directory by default: distinct names by default.
    assert _blindgate("psi", "keygen", "--out", "keys/network", cwd=tmp_path).returncode == 0
    assert _name(tmp_path / "keys" / "network" / "cert.pem") == "network"
    bad = _blindgate("keygen", "--name", "a b/c", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    listed = _blindgate("--help", cwd=tmp_path).stdout
    assert "keygen" in listed and "sample-data" in listed
    assert "blindgate keygen" in _blindgate("psi", "--help", cwd=tmp_path).stdout


def _dealer_accepts(pinned: list[Identity], callers: list[Identity]) -> list[str]:
    """A dealer pinning ``pinned`` and callers connecting to it; what each accept saw."""
    dealer = Identity.generate("party")
    outcomes: list[str] = []
    with Listener("127.0.0.1:0", dealer, b"".join(p.cert_pem for p in pinned), timeout=10) as listener:

        def call(identity: Identity) -> None:
            try:
                channel = connect(f"127.0.0.1:{listener.port}", identity, dealer.cert_pem, 10, retry_for=5)
                channel.send(b"hello")
                channel.recv()
            except ChannelError:
                pass

        threads = [threading.Thread(target=call, args=(c,)) for c in callers]
        for thread in threads:
            thread.start()
        for _ in callers:
            try:
                channel = listener.accept(accept_timeout=3)
                channel.recv()
                channel.send(b"ok")
                outcomes.append("accepted")
            except ChannelError as exc:
                outcomes.append(f"refused: {exc}")
        for thread in threads:
            thread.join(10)
    return outcomes


def test_a_dealer_pins_two_certificates_with_the_same_name() -> None:
    wallet, network = Identity.generate("party"), Identity.generate("party")
    assert _dealer_accepts([wallet, network], [wallet, network]) == ["accepted", "accepted"]


def test_a_stranger_with_a_pinned_name_is_still_refused() -> None:
    """The attacker's move: a new key under the same name as both pinned parties."""
    wallet, network, stranger = (Identity.generate("party") for _ in range(3))
    (outcome,) = _dealer_accepts([wallet, network], [stranger])
    # The dealer refuses the stranger's handshake and keeps waiting for a pinned party (a stray
    # does not end a run), so what its accept reports is that none came.
    assert outcome.startswith("refused") and "no peer connected" in outcome


@pytest.mark.parametrize("name", ["wallet", "dealer"])
def test_certificates_carry_key_identifiers(name: str) -> None:
    cert = x509.load_pem_x509_certificate(Identity.generate(name).cert_pem)
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert ski.digest == aki.key_identifier  # self-signed: it names its own key


def test_old_same_name_certificates_are_refused_with_the_fix() -> None:
    import datetime

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from blindgate.pets.keygen import IdentityError, check_pinnable

    def old_style() -> bytes:  # as blindgate made them before: no key identifiers
        key = ed25519.Ed25519PrivateKey.generate()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "blindgate-psi-party")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, None)
        )  # fmt: skip
        return cert.public_bytes(serialization.Encoding.PEM)

    with pytest.raises(IdentityError, match="blindgate keygen --name"):
        check_pinnable([old_style(), old_style()])
    check_pinnable([Identity.generate("party").cert_pem, Identity.generate("party").cert_pem])
