"""What the CA and the serving certificate contain, and what is refused."""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs import authority

NOW = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def ca(identity: authority.ServiceIdentity) -> authority.Issued:
    return authority.new_authority(identity=identity, days=30, now=NOW)


@pytest.fixture(scope="module")
def serving(ca: authority.Issued, identity: authority.ServiceIdentity) -> authority.Issued:
    return authority.issue_serving(authority=ca, identity=identity, days=30, now=NOW)


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[Any]:
    return cert.extensions.get_extension_for_class(kind)


def test_ca_is_a_critical_ca_that_may_sign_certificates(ca: authority.Issued) -> None:
    constraints = _extension(ca.certificate, x509.BasicConstraints)
    usage = _extension(ca.certificate, x509.KeyUsage)
    assert constraints.critical and constraints.value.ca is True
    assert constraints.value.path_length == 0
    assert usage.critical and usage.value.key_cert_sign is True


def test_ca_is_self_signed(ca: authority.Issued) -> None:
    assert ca.certificate.issuer == ca.certificate.subject
    ca.certificate.verify_directly_issued_by(ca.certificate)


def test_serving_certificate_is_signed_by_the_ca(
    ca: authority.Issued, serving: authority.Issued
) -> None:
    serving.certificate.verify_directly_issued_by(ca.certificate)


def test_serving_certificate_is_for_server_auth_and_not_a_ca(serving: authority.Issued) -> None:
    eku = _extension(serving.certificate, x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _extension(serving.certificate, x509.BasicConstraints).value.ca is False
    assert _extension(serving.certificate, x509.KeyUsage).value.key_cert_sign is False


def test_serving_certificate_names_every_service_name_localhost_and_loopback(
    serving: authority.Issued,
) -> None:
    sans = _extension(serving.certificate, x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "carbongate-webhook",
        "carbongate-webhook.carbongate",
        "carbongate-webhook.carbongate.svc",
        "carbongate-webhook.carbongate.svc.cluster.local",
        "localhost",
    ]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.IPv4Address("127.0.0.1")]


def test_keys_are_ec_p256(ca: authority.Issued, serving: authority.Issued) -> None:
    for issued in (ca, serving):
        assert isinstance(issued.key.curve, ec.SECP256R1)
        assert issued.certificate.public_key() == issued.key.public_key()


def test_validity_starts_slightly_before_now_and_lasts_the_asked_days(
    serving: authority.Issued,
) -> None:
    cert = serving.certificate
    assert cert.not_valid_before_utc == NOW - authority.CLOCK_SKEW
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=30)


@pytest.mark.parametrize(
    ("service", "namespace", "message"),
    [
        ("Carbongate", "carbongate", "service name 'Carbongate'"),
        ("1webhook", "carbongate", "service name '1webhook'"),
        ("webhook", "carbon_gate", "namespace 'carbon_gate'"),
        ("webhook", "", "namespace ''"),
        ("w" * 64, "carbongate", "at most 63"),
    ],
)
def test_names_kubernetes_would_reject_are_refused_with_the_name(
    service: str, namespace: str, message: str
) -> None:
    with pytest.raises(authority.CertificateError, match=message):
        authority.ServiceIdentity(service=service, namespace=namespace)


@pytest.mark.parametrize("days", [0, -1, authority.MAX_DAYS + 1])
def test_validity_outside_one_day_to_ten_years_is_refused(
    identity: authority.ServiceIdentity, days: int
) -> None:
    with pytest.raises(authority.CertificateError, match=f"not {days}"):
        authority.new_authority(identity=identity, days=days, now=NOW)
