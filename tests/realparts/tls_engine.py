"""The test Docker engine behind real TLS: the "tcp:// with TLS" part.

dockerd's own `--tlsverify` listener would mean a second engine; instead a TLS server on
a free loopback port — Python's ssl module, requiring a client certificate signed by a
throwaway CA, as `dockerd --tlsverify` does — forwards each connection to the test
engine's unix socket. The certificates are written as Docker expects them in a
DOCKER_CERT_PATH folder: ca.pem, cert.pem and key.pem for the client.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CHUNK = 65536
ACCEPT_POLL_S = 0.1


@dataclass(frozen=True)
class TlsEngine:
    url: str
    """tcp://127.0.0.1:PORT"""
    client_certs: Path
    """ca.pem, cert.pem, key.pem for a client"""
    stranger_certs: Path
    """a client certificate from another CA: refused"""


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool = False, server: bool = False
          ) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.subject if issuer else name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(folder: Path, name: str, cert: x509.Certificate,
           key: ec.EllipticCurvePrivateKey | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        (folder / "key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """The server's folder, a client's, and a stranger's (signed by another CA)."""
    ca_key = _key()
    ca = _cert("rigdeck test CA", ca_key, None, ca_key, ca=True)
    server_key = _key()
    _write(folder / "server", "ca", ca)
    _write(folder / "server", "cert", _cert("127.0.0.1", server_key, ca, ca_key, server=True),
           server_key)
    client_key = _key()
    _write(folder / "client", "ca", ca)
    _write(folder / "client", "cert", _cert("client", client_key, ca, ca_key), client_key)
    other_key = _key()
    other = _cert("another CA", other_key, None, other_key, ca=True)
    stranger_key = _key()
    _write(folder / "stranger", "ca", ca)
    _write(folder / "stranger", "cert", _cert("stranger", stranger_key, other, other_key),
           stranger_key)
    return folder / "server", folder / "client", folder / "stranger"


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(CHUNK):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def _serve(client: socket.socket, engine_socket: str) -> None:
    with client, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as engine:
        engine.connect(engine_socket)
        back = threading.Thread(target=_pump, args=(engine, client), daemon=True)
        back.start()
        _pump(client, engine)
        back.join()


@contextlib.contextmanager
def tls_engine(engine_url: str, folder: Path) -> Iterator[TlsEngine]:
    """The engine at unix://… reachable as tcp://127.0.0.1:PORT with mutual TLS."""
    server, client, stranger = _certificates(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=server / "ca.pem")
    context.load_cert_chain(server / "cert.pem", server / "key.pem")
    context.verify_mode = ssl.CERT_REQUIRED  # as dockerd --tlsverify
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(ACCEPT_POLL_S)  # to see `stop` between two connections
    port = listener.getsockname()[1]
    engine_socket = engine_url.removeprefix("unix://")
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.settimeout(None)
            try:
                wrapped = context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                raw.close()  # no certificate, or not ours: refused, as dockerd does
                continue
            threading.Thread(target=_serve, args=(wrapped, engine_socket), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield TlsEngine(f"tcp://127.0.0.1:{port}", client, stranger)
    finally:
        stop.set()
        acceptor.join()
        listener.close()
