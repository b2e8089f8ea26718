"""`blindgate keygen`: create the TLS identity of one PET party (psi, train, predict).

    blindgate keygen --name wallet --out keys/wallet

writes ``keys/wallet/cert.pem`` (give it to the peers, out of band) and
``keys/wallet/key.pem`` (private, mode 0600, never leaves the machine). The name is
the certificate's common name and is what the peers' logs show; parties are told
apart by key, not name, so two certificates with the same name still work (a dealer
pins both), but distinct names keep the logs readable. An existing key is never
overwritten.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from blindgate.commandline import parser as command_parser
from blindgate.commandline import run_command
from blindgate.errors import EXIT_OK, BlindgateError
from blindgate.net import Identity


class IdentityError(BlindgateError):
    """A name or a set of pinned certificates that cannot make a working identity (exit 2)."""


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def parser() -> argparse.ArgumentParser:
    p = command_parser("blindgate keygen", __doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, help="this party's name, e.g. wallet, network, dealer")
    p.add_argument("--out", type=Path, help="directory for cert.pem and key.pem (default: keys/NAME)")
    return p


def create(name: str, out: Path) -> str:
    """Write a new identity named ``name`` into ``out``; returns a line for the user."""
    if not _NAME.fullmatch(name):
        raise IdentityError("--name takes letters, digits, '.', '_' and '-' (at most 64)")
    if (out / "key.pem").exists():
        raise FileExistsError(f"{out} already holds a key; not overwriting")
    identity = Identity.generate(name)
    identity.save(out)
    return (
        f"identity {name!r} written to {out}; give {out / 'cert.pem'} to the peers "
        f"(SHA-256 fingerprint {identity.fingerprint[:16]}..., to compare by phone)"
    )


def check_pinnable(certificates: list[bytes]) -> None:
    """Refuse, with the fix, certificates OpenSSL cannot tell apart when pinned together.

    Identities made before certificates carried key identifiers, with the same name, make
    every connection but one fail verification; say so before listening.
    """
    from cryptography import x509

    seen: dict[str, bool] = {}
    for pem in certificates:
        cert = x509.load_pem_x509_certificate(pem)
        name = cert.subject.rfc4514_string()
        try:
            cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            has_key_id = True
        except x509.ExtensionNotFound:
            has_key_id = False
        if name in seen and not (has_key_id and seen[name]):
            raise IdentityError(
                f"two pinned certificates share the name {name!r} and were made by an older blindgate: "
                "make new identities with `blindgate keygen --name NAME`"
            )
        seen[name] = has_key_id


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)

    def work() -> int:
        print(create(args.name, args.out or Path("keys") / args.name))
        return EXIT_OK

    return run_command("blindgate keygen", work)
