"""The serving certificate's remaining validity, read from a real generated certificate.

``certs.files.generate`` writes the same PEM files ``carbongate certs
generate`` does; the clock is the test's, relative to the certificate's own
issue instant, so nothing depends on the calendar.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import prometheus_client

from certs import authority, files
from webhook import certificate

ISSUED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
IDENTITY = authority.ServiceIdentity(service="carbongate-webhook", namespace="carbongate")


def _generate(directory: Path, *, days: int) -> Path:
    files.generate(out_dir=directory, identity=IDENTITY, days=days, force=True, now=ISSUED)
    return directory / files.TLS_CERT


def _sample(name: str, **labels: str) -> float | None:
    return prometheus_client.REGISTRY.get_sample_value(name, labels)  # this process (no multiprocess)


def _gauge(path: Path) -> float | None:
    return _sample("carbongate_webhook_certificate_expiry_seconds", file=str(path))


def _errors() -> float:
    return _sample("carbongate_webhook_data_reloads_total", document="certificate", result="error") or 0.0


def test_the_gauge_says_how_long_the_served_certificate_has_left(tmp_path: Path) -> None:
    path = _generate(tmp_path, days=30)
    expiry = certificate.Expiry(path=path, clock=lambda: ISSUED + timedelta(days=20))
    not_after = certificate.load_not_after(path)["not_after"]
    left = expiry.refresh()
    assert left == (not_after - (ISSUED + timedelta(days=20))).total_seconds()
    assert timedelta(days=9) < timedelta(seconds=left) <= timedelta(days=10)
    assert _gauge(path) == left


def test_a_renewed_certificate_is_read_again_when_the_file_changes(tmp_path: Path) -> None:
    now = ISSUED + timedelta(days=20)
    expiry = certificate.Expiry(path=_generate(tmp_path, days=30), clock=lambda: now)
    short = expiry.refresh()
    renewed = _generate(tmp_path, days=90)
    os.utime(renewed, ns=(0, renewed.stat().st_mtime_ns + 1_000_000))  # a later mtime, surely
    longer = expiry.refresh()
    assert short is not None and longer is not None
    assert longer - short == timedelta(days=60).total_seconds()


def test_an_expired_certificate_gives_a_negative_number(tmp_path: Path) -> None:
    expiry = certificate.Expiry(path=_generate(tmp_path, days=5), clock=lambda: ISSUED + timedelta(days=7))
    left = expiry.refresh()
    assert left is not None and left < -timedelta(days=1).total_seconds()


def test_a_broken_file_keeps_the_last_reading_and_is_counted(tmp_path: Path) -> None:
    path = _generate(tmp_path, days=30)
    expiry = certificate.Expiry(path=path, clock=lambda: ISSUED)
    first = expiry.refresh()
    errors = _errors()
    path.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    assert expiry.refresh() == first
    assert _errors() == errors + 1


def test_no_certificate_file_sets_nothing(tmp_path: Path) -> None:
    assert certificate.Expiry(path=tmp_path / "absent.crt", clock=lambda: ISSUED).refresh() is None


def test_the_end_of_validity_read_from_der_is_what_cryptography_reads(tmp_path: Path) -> None:
    from cryptography import x509

    for days in (1, 30, 3650):
        path = _generate(tmp_path, days=days)
        expected = x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc
        assert certificate.load_not_after(path)["not_after"] == expected


def test_an_end_past_2049_is_read_from_generalized_time(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "far")])
    end = datetime(2061, 3, 4, 5, 6, 7, tzinfo=UTC)
    built = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
             .serial_number(7).not_valid_before(ISSUED).not_valid_after(end).sign(key, hashes.SHA256()))
    path = tmp_path / "far.crt"
    path.write_bytes(built.public_bytes(serialization.Encoding.PEM))
    assert certificate.load_not_after(path)["not_after"] == end


def test_a_file_that_is_no_certificate_is_a_value_error(tmp_path: Path) -> None:
    import pytest

    path = tmp_path / "tls.crt"
    for content in (b"not a certificate", b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                    b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"):
        path.write_bytes(content)
        with pytest.raises(ValueError):
            certificate.load_not_after(path)
