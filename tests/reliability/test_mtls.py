"""Optional mTLS: with ``webhook.client_ca_file`` set, only a client certificate signed by that CA gets in.

The API server authenticates to webhooks with a client certificate when its
admission configuration names one (``kubeConfigFile`` with
``client-certificate``). Here a client CA of the test's own, not the
webhook's serving CA, signs a ``clientAuth`` certificate, as a cluster's CA
would sign the API server's. The server is the real one (gunicorn, TLS).
"""

from __future__ import annotations

import datetime
import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.reliability import servers
from tests.support import webhook_server

pytestmark = pytest.mark.xdist_group("reliability")

Issued = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _issue(subject: str, *, issuer: Issued | None, usage: list[x509.ObjectIdentifier] | None) -> Issued:
    """An EC certificate: a self-signed CA when ``issuer`` is None, else a leaf with ``usage``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer[0].subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True))
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _write(issued: Issued, directory: Path, name: str) -> tuple[Path, Path]:
    certificate, key = issued
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """The client CA, the API server's certificate it signed, and certificates it did not sign well."""
    directory = tmp_path_factory.mktemp("client-certs")
    client_ca = _issue("cluster client CA", issuer=None, usage=None)
    other_ca = _issue("some other CA", issuer=None, usage=None)
    return {
        "ca": _write(client_ca, directory, "client-ca"),
        "apiserver": _write(_issue("kube-apiserver", issuer=client_ca, usage=[ExtendedKeyUsageOID.CLIENT_AUTH]),
                            directory, "apiserver"),
        "other-ca": _write(_issue("kube-apiserver", issuer=other_ca, usage=[ExtendedKeyUsageOID.CLIENT_AUTH]),
                           directory, "other-ca"),
        "server-only": _write(_issue("kube-apiserver", issuer=client_ca, usage=[ExtendedKeyUsageOID.SERVER_AUTH]),
                              directory, "server-only"),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory,
           clients: dict[str, tuple[Path, Path]]) -> Iterator[webhook_server.RunningWebhook]:
    with webhook_server.running_webhook(tmp_path_factory.mktemp("mtls"), client_cert=clients["apiserver"],
                                        sections={"webhook": {"client_ca_file": str(clients["ca"][0])}}) as running:
        yield running


def post_review(server: webhook_server.RunningWebhook, client_cert: tuple[Path, Path] | None,
                version: ssl.TLSVersion) -> int:
    """POST one review presenting ``client_cert`` (or none) over ``version``; the HTTP status."""
    context = ssl.create_default_context(cafile=str(server.ca_file))
    context.minimum_version = context.maximum_version = version
    if client_cert is not None:
        context.load_cert_chain(*client_cert)
    host, port = server.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    try:
        connection.request("POST", "/mutate", body=servers.review_body("mtls"),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert json.loads(response.read())["response"]["uid"] == "mtls"
        return response.status
    finally:
        connection.close()


VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_the_api_servers_certificate_signed_by_the_client_ca_is_accepted(
        server: webhook_server.RunningWebhook, clients: dict[str, tuple[Path, Path]], version: ssl.TLSVersion) -> None:
    assert post_review(server, clients["apiserver"], version) == 200


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
@pytest.mark.parametrize(("presented", "alert"), [
    (None, "CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE"),
    ("other-ca", "UNKNOWN_CA|CERTIFICATE_UNKNOWN|BAD_CERTIFICATE"),
    ("server-only", "UNSUPPORTED_CERTIFICATE|CERTIFICATE_UNKNOWN|BAD_CERTIFICATE"),
], ids=["no-certificate", "another-ca", "not-for-client-auth"])
def test_a_client_without_a_certificate_the_client_ca_signed_for_client_auth_is_refused(
        server: webhook_server.RunningWebhook, clients: dict[str, tuple[Path, Path]], version: ssl.TLSVersion,
        presented: str | None, alert: str) -> None:
    """Refused in the handshake (TLS 1.2) or by the alert that ends it (TLS 1.3): no HTTP answer at all.

    (In TLS 1.3 a reset or an EOF instead of the alert is accepted too: the client's
    handshake is over before the server checks its certificate, so it may be writing its
    request when the alert and the close arrive, and fail on the write before reading the
    alert. The asgi worker answers fast enough for that in about one connection of five.)"""
    with pytest.raises((ssl.SSLError, ConnectionError)) as refused:
        post_review(server, clients[presented] if presented else None, version)
    tls13_eof = version is ssl.TLSVersion.TLSv1_3 and isinstance(refused.value, ssl.SSLEOFError)
    if isinstance(refused.value, ssl.SSLError) and not tls13_eof:
        assert any(name in str(refused.value).upper() for name in alert.split("|")), refused.value
    assert server.get("/healthz")[0] == 200
