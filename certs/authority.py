"""A development certificate authority and the webhook's serving certificate.

The kube-apiserver calls the webhook over TLS and verifies it against the
``caBundle`` of the webhook configuration, matching the *service DNS name* it
dials (``<service>.<namespace>.svc``) against the certificate's subject
alternative names (Go ignores the common name). So the serving certificate
carries every name a client may use in the cluster, plus ``localhost`` and
``127.0.0.1`` for ``make run`` and the tests.

Pure functions over ``cryptography`` objects: nothing here touches the disk
(see :mod:`certs.files`), and the clock is an argument so tests can pin it.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Backdate validity so a node whose clock runs a little behind still accepts it.
CLOCK_SKEW = datetime.timedelta(minutes=5)
MAX_DAYS = 3650
# Service names are RFC 1035 labels; namespaces RFC 1123 labels (Kubernetes rules).
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_ADDRESSES = (ipaddress.IPv4Address("127.0.0.1"),)


class CertificateError(ValueError):
    """A request for a certificate that cannot be honoured; the message says why."""


@dataclass(frozen=True)
class ServiceIdentity:
    """The Kubernetes Service the webhook is reached through."""

    service: str
    namespace: str

    def __post_init__(self) -> None:
        if not _DNS1035_LABEL.fullmatch(self.service):
            raise CertificateError(
                f"service name {self.service!r} is not a valid Kubernetes Service name "
                "(lowercase letters, digits and '-', starting with a letter, at most 63)"
            )
        if not _DNS1123_LABEL.fullmatch(self.namespace):
            raise CertificateError(
                f"namespace {self.namespace!r} is not a valid Kubernetes namespace name "
                "(lowercase letters, digits and '-', at most 63)"
            )

    def dns_names(self) -> tuple[str, ...]:
        """Every name the API server or a pod may dial, shortest first."""
        base = f"{self.service}.{self.namespace}"
        return (self.service, base, f"{base}.svc", f"{base}.svc.cluster.local", *LOOPBACK_NAMES)


@dataclass(frozen=True)
class Issued:
    """A certificate and the private key it certifies."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def new_authority(*, identity: ServiceIdentity, days: int, now: datetime.datetime) -> Issued:
    """A self-signed CA that may sign serving certificates and nothing below them."""
    _check_days(days)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "carbongate"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"carbongate development CA ({identity.namespace})"),
    ])
    usage = _key_usage(key_cert_sign=True)
    builder = (
        _validity(x509.CertificateBuilder(), now=now, days=days)
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return Issued(certificate=builder.sign(key, hashes.SHA256()), key=key)


def issue_serving(
    *, authority: Issued, identity: ServiceIdentity, days: int, now: datetime.datetime
) -> Issued:
    """A serverAuth certificate for every name of ``identity``, signed by ``authority``."""
    _check_days(days)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in identity.dns_names()]
    sans += [x509.IPAddress(a) for a in LOOPBACK_ADDRESSES]
    authority_ski = authority.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value
    builder = (
        _validity(x509.CertificateBuilder(), now=now, days=days)
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.service)]))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(key_cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(authority_ski),
            critical=False,
        )
    )
    return Issued(certificate=builder.sign(authority.key, hashes.SHA256()), key=key)


def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise CertificateError(f"validity must be between 1 and {MAX_DAYS} days, not {days}")


def _validity(
    builder: x509.CertificateBuilder, *, now: datetime.datetime, days: int
) -> x509.CertificateBuilder:
    start = now - CLOCK_SKEW
    return builder.not_valid_before(start).not_valid_after(now + datetime.timedelta(days=days))


def _key_usage(*, key_cert_sign: bool) -> x509.KeyUsage:
    """digitalSignature for ECDHE handshakes; keyCertSign (and cRLSign) only on the CA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
