"""Fixtures for the certificate tests: generated files and a real TLS server on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, Self

import pytest

from certs import authority, files

SERVICE = "carbongate-webhook"
NAMESPACE = "carbongate"


@pytest.fixture(scope="module")
def identity() -> authority.ServiceIdentity:
    """The webhook Service `make run` and the deploy manifests use."""
    return authority.ServiceIdentity(service=SERVICE, namespace=NAMESPACE)


@pytest.fixture(scope="module")
def generated(
    tmp_path_factory: pytest.TempPathFactory, identity: authority.ServiceIdentity
) -> files.Written:
    """One CA and serving certificate per test module, as `make run` makes them."""
    out = tmp_path_factory.mktemp("certs")
    return files.generate(out_dir=out, identity=identity, days=30, force=False)


class TlsServer:
    """A TLS server on 127.0.0.1 that answers each handshake with b"ok" and hangs up.

    Handshake failures on the server side are expected in the negative tests
    (the client refuses the certificate) and are ignored here: the client's
    verdict is what the tests assert.
    """

    def __init__(self, *, certfile: Path, keyfile: Path) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certfile=certfile, keyfile=keyfile)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                try:
                    with self._context.wrap_socket(connection, server_side=True) as tls:
                        tls.sendall(b"ok")
                except (ssl.SSLError, OSError):
                    continue


@pytest.fixture(scope="module")
def tls_server(generated: files.Written) -> Iterator[TlsServer]:
    """The generated serving certificate behind a real TLS listener."""
    with TlsServer(
        certfile=generated.directory / files.TLS_CERT,
        keyfile=generated.directory / files.TLS_KEY,
    ) as server:
        yield server


def _fetch(*, port: int, server_hostname: str, cafile: Path, host: str = "127.0.0.1") -> bytes:
    """Connect to ``host:port`` asking for ``server_hostname``, trusting only ``cafile``.

    ``create_default_context`` turns on certificate verification and hostname
    checking, exactly as a careful client (like the kube-apiserver) would.
    """
    context = ssl.create_default_context(cafile=str(cafile))
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        return tls.recv(16)


class Fetch(Protocol):
    def __call__(
        self, *, port: int, server_hostname: str, cafile: Path, host: str = ...
    ) -> bytes: ...


@pytest.fixture
def fetch() -> Fetch:
    """A verifying TLS client (see ``_fetch``); a fixture so test modules need no imports."""
    return _fetch
