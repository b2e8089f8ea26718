"""Mutually authenticated TLS 1.3 between two parties that pin each other's certificate.

Each party has an identity: an Ed25519 key and a self-signed certificate. A party
trusts exactly the peer certificate it was given (no CA, no host names), so a
connection succeeds only between the two parties that exchanged certificates out of
band. Identities made for a single run live in memory and a private temporary file
that is removed as soon as OpenSSL has read it.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from blindgate.net.channel import DEFAULT_MAX_FRAME, DEFAULT_TIMEOUT_S, SocketChannel
from blindgate.net.errors import BadAddress, ChannelError, ChannelTimeout, PeerClosed

log = logging.getLogger("blindgate.net")

# How long a connection may take to complete the TLS handshake before the listener moves on.
HANDSHAKE_TIMEOUT_S = 5.0

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"


@dataclass(frozen=True)
class Identity:
    """A party's TLS identity: PEM certificate and PEM (PKCS#8) private key."""

    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def generate(cls, name: str, days: int = 365) -> Identity:
        """A party's identity for the PET channels: Ed25519, its own trust anchor (a peer pins it
        as the one certificate it accepts)."""
        key = ed25519.Ed25519PrivateKey.generate()
        anchor = x509.BasicConstraints(ca=True, path_length=0)
        return cls._self_signed(key, name, days, anchor, None)

    @classmethod
    def for_server(cls, host: str, days: int = 30) -> Identity:
        """A TLS server's self-signed leaf certificate for ``host`` (an IP address or a DNS name):
        ECDSA P-256, which every TLS client speaks, and no CA bit, so that pinning it trusts this
        certificate alone (`blindgate.api.network` refuses a CA certificate as a pin)."""
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            name = x509.DNSName(host)
        key = ec.generate_private_key(ec.SECP256R1())
        return cls._self_signed(key, host, days, x509.SubjectAlternativeName([name]), hashes.SHA256())

    @classmethod
    def _self_signed(
        cls,
        key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey,
        name: str,
        days: int,
        extension: x509.ExtensionType,
        digest: hashes.SHA256 | None,
    ) -> Identity:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(extension, critical=isinstance(extension, x509.BasicConstraints))
        )
        if isinstance(extension, x509.BasicConstraints):
            # A PET party's anchor: key identifiers let OpenSSL tell apart pinned certificates
            # that share a name (a dealer pins two parties); by name alone it fails.
            public = key.public_key()
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
            )
        cert = builder.sign(key, digest)
        return cls(
            cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )

    @classmethod
    def load(cls, directory: Path) -> Identity:
        return cls((directory / CERT_FILE).read_bytes(), (directory / KEY_FILE).read_bytes())

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CERT_FILE).write_bytes(self.cert_pem)
        key_path = directory / KEY_FILE
        key_path.touch(mode=0o600)
        key_path.write_bytes(self.key_pem)

    @property
    def fingerprint(self) -> str:
        cert = x509.load_pem_x509_certificate(self.cert_pem)
        return cert.fingerprint(hashes.SHA256()).hex()


def _context(purpose: int, identity: Identity, peer_cert_pem: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=peer_cert_pem.decode())
    # OpenSSL reads a key pair from files only: hand it a private file and remove it at once.
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "identity.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(identity.key_pem + identity.cert_pem)
        context.load_cert_chain(path)
    return context


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise BadAddress(f"expected HOST:PORT, got {address!r}")
    return host.strip("[]"), int(port)


class Listener:
    """A bound server socket that accepts authenticated peers; port 0 picks a free port."""

    def __init__(
        self,
        address: str,
        identity: Identity,
        peer_cert_pem: bytes,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        host, port = _split(address)
        self._context = _context(ssl.PROTOCOL_TLS_SERVER, identity, peer_cert_pem)
        self._server = socket.create_server((host, port))
        self.host = host
        self.port: int = self._server.getsockname()[1]
        self.timeout = timeout
        self.max_frame = max_frame

    def accept(self, accept_timeout: float | None = None) -> SocketChannel:
        """The pinned peer's channel. Anything else that connects first — garbage, an HTTP probe,
        a client with another certificate, a socket that says nothing — is refused with a log line
        (its handshake bounded by `HANDSHAKE_TIMEOUT_S`) and the listener keeps waiting, until the
        accept timeout: a port scan or a health check does not end the run."""
        deadline = time.monotonic() + (accept_timeout or self.timeout)
        while (left := deadline - time.monotonic()) > 0:
            self._server.settimeout(left)
            try:
                raw, _ = self._server.accept()
            except TimeoutError:
                break
            try:
                sock = _handshake(raw, self._context, True, min(HANDSHAKE_TIMEOUT_S, left))
            except ChannelError as refusal:
                log.warning("refused a connection that is not the pinned peer: %s", type(refusal).__name__)
                continue
            return SocketChannel(sock, self.timeout, self.max_frame)
        raise ChannelTimeout(f"no peer connected to port {self.port} in time")

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def listen(
    address: str,
    identity: Identity,
    peer_cert_pem: bytes,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_frame: int = DEFAULT_MAX_FRAME,
    accept_timeout: float | None = None,
) -> SocketChannel:
    """Accept one authenticated peer on ``HOST:PORT`` and return the channel to it."""
    with Listener(address, identity, peer_cert_pem, timeout, max_frame) as listener:
        return listener.accept(accept_timeout)


def connect(
    address: str,
    identity: Identity,
    peer_cert_pem: bytes,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_frame: int = DEFAULT_MAX_FRAME,
    retry_for: float = 10.0,
) -> SocketChannel:
    """Connect to the peer at ``HOST:PORT``, retrying while it starts, and authenticate it."""
    host, port = _split(address)
    context = _context(ssl.PROTOCOL_TLS_CLIENT, identity, peer_cert_pem)
    deadline = time.monotonic() + retry_for
    while True:
        try:
            raw = socket.create_connection((host, port), timeout=timeout)
            break
        except (ConnectionRefusedError, TimeoutError) as exc:
            if time.monotonic() >= deadline:
                raise PeerClosed(f"could not reach a peer at {address}") from exc
            time.sleep(0.1)
    return _wrap(raw, context, server_side=False, timeout=timeout, max_frame=max_frame)


def _wrap(
    raw: socket.socket, context: ssl.SSLContext, server_side: bool, timeout: float, max_frame: int
) -> SocketChannel:
    return SocketChannel(_handshake(raw, context, server_side, timeout), timeout, max_frame)


def _handshake(
    raw: socket.socket, context: ssl.SSLContext, server_side: bool, timeout: float
) -> ssl.SSLSocket:
    raw.settimeout(timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return context.wrap_socket(raw, server_side=server_side)
    except ssl.SSLError as exc:
        raw.close()
        raise ChannelError(f"TLS handshake failed: the peer is not the pinned party ({exc.reason})") from exc
    except (OSError, TimeoutError) as exc:
        raw.close()
        raise PeerClosed("connection lost during the TLS handshake") from exc
