"""The generated certificates work for real TLS: a verifying client trusting only the CA."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from certs import authority, files
from tests.certs.conftest import Fetch, TlsServer

IN_CLUSTER_NAMES = (
    "carbongate-webhook",
    "carbongate-webhook.carbongate",
    "carbongate-webhook.carbongate.svc",
    "carbongate-webhook.carbongate.svc.cluster.local",
)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_client_reaching_the_server_by_a_resolvable_san_verifies_it(
    tls_server: TlsServer, generated: files.Written, fetch: Fetch, host: str
) -> None:
    cafile = generated.directory / files.CA_CERT
    assert fetch(port=tls_server.port, host=host, server_hostname=host, cafile=cafile) == b"ok"


@pytest.mark.parametrize("name", IN_CLUSTER_NAMES)
def test_client_asking_for_each_in_cluster_service_name_verifies_it(
    tls_server: TlsServer, generated: files.Written, fetch: Fetch, name: str
) -> None:
    """The names do not resolve here, so TCP goes to 127.0.0.1 while SNI and the
    hostname check use the service name, as the kube-apiserver's dial would."""
    cafile = generated.directory / files.CA_CERT
    assert fetch(port=tls_server.port, server_hostname=name, cafile=cafile) == b"ok"


def test_client_asking_for_a_name_not_in_the_certificate_refuses_it(
    tls_server: TlsServer, generated: files.Written, fetch: Fetch
) -> None:
    cafile = generated.directory / files.CA_CERT
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch|match"):
        fetch(port=tls_server.port, server_hostname="carbongate-webhook.other.svc", cafile=cafile)


def test_client_trusting_another_ca_refuses_the_certificate(
    tls_server: TlsServer, identity: authority.ServiceIdentity, fetch: Fetch, tmp_path: Path
) -> None:
    other = files.generate(out_dir=tmp_path, identity=identity, days=1, force=False)
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        fetch(
            port=tls_server.port,
            server_hostname="localhost",
            cafile=other.directory / files.CA_CERT,
        )
