"""How long the serving certificate has left, as a metric (docs/webhook.md, "No silent failure").

An expired certificate does not stop carbongate: the API server cannot
complete the TLS handshake, ignores the webhook (``failurePolicy: Ignore``)
and admits every workload unchanged. So the webhook reads the certificate it
serves (``webhook.certfile``, which gunicorn loads for every new connection,
so a renewed file is what clients get) and exports the seconds left,
``carbongate_webhook_certificate_expiry_seconds``; the alerts fire weeks
before the end. The file is parsed again only when it changes; the seconds
left are recomputed on every data sync.

The end of validity is read from the DER encoding directly (RFC 5280's
``tbsCertificate.validity.notAfter``, a fixed position in every X.509
certificate) rather than with ``cryptography``: importing its x509 module
cost every worker about 12 MB of RSS for this one field
(docs/performance.md, "Memory"); tests compare the two readings.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from carbongate import files
from webhook import metrics

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)
_SEQUENCE, _VERSION, _UTC_TIME, _GENERALIZED_TIME = 0x30, 0xA0, 0x17, 0x18


def load_not_after(path: Path) -> Mapping[str, Any]:
    """The first certificate's end of validity, from a PEM file (ValueError when unreadable)."""
    found = _PEM.search(path.read_bytes())
    if found is None:
        raise ValueError(f"{path}: no PEM certificate")
    try:
        der = base64.b64decode(b"".join(found.group(1).split()), validate=True)
    except binascii.Error as error:
        raise ValueError(f"{path}: the certificate is not base64: {error}") from error
    return {"not_after": not_after(der)}


def not_after(der: bytes) -> datetime:
    """``notAfter`` of a DER certificate: Certificate > tbsCertificate > validity > second time."""
    try:
        tbs_start, _ = _inside(der, 0, _SEQUENCE)
        tbs_start, tbs_end = _inside(der, tbs_start, _SEQUENCE)
        position = tbs_start
        if der[position] == _VERSION:
            position = _skip(der, position)
        for _ in range(3):  # serialNumber, signature, issuer
            position = _skip(der, position)
        validity, _ = _inside(der, position, _SEQUENCE)
        ending = _skip(der, validity)  # past notBefore
        tag = der[ending]
        start, end = _inside(der, ending, tag)
        if not tbs_start <= start <= end <= tbs_end:
            raise ValueError("validity lies outside the certificate")
        return _time(tag, der[start:end].decode("ascii"))
    except (IndexError, UnicodeDecodeError) as error:
        raise ValueError(f"not a DER X.509 certificate: {error}") from error


def _header(der: bytes, position: int) -> tuple[int, int, int]:
    """Tag, start and end of the contents of the DER element at ``position``."""
    tag, length = der[position], der[position + 1]
    start = position + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise ValueError(f"DER length of {count} bytes")
        length = int.from_bytes(der[start:start + count], "big")
        start += count
    if start + length > len(der):
        raise ValueError("DER element runs past the end")
    return tag, start, start + length


def _inside(der: bytes, position: int, tag: int) -> tuple[int, int]:
    found, start, end = _header(der, position)
    if found != tag:
        raise ValueError(f"DER tag {found:#x} where {tag:#x} was expected")
    return start, end


def _skip(der: bytes, position: int) -> int:
    return _header(der, position)[2]


def _time(tag: int, text: str) -> datetime:
    """UTCTime (years 1950-2049, RFC 5280 4.1.2.5.1) or GeneralizedTime, both in Z."""
    if tag == _UTC_TIME:
        parsed = datetime.strptime(text, "%y%m%d%H%M%SZ")
        year = parsed.year if parsed.year < 2050 else parsed.year - 100
        return parsed.replace(year=year, tzinfo=UTC)
    if tag == _GENERALIZED_TIME:
        return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    raise ValueError(f"DER tag {tag:#x} is not a time")


class Expiry:
    """The served certificate's end of validity, watched, and the gauge it sets."""

    def __init__(self, *, path: Path, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._path = path
        self.document = files.WatchedDocument(
            name="certificate", path=path, loader=load_not_after,
            on_error=lambda _: metrics.DATA_RELOADS.labels(
                document="certificate", result="error").inc())

    def refresh(self) -> float | None:
        """Re-read the file if it changed; set and return the seconds left (None: no file)."""
        if self.document.refresh():
            metrics.DATA_RELOADS.labels(document="certificate", result="ok").inc()
        known = self.document.value
        if known is None:
            return None
        not_after: datetime = known["not_after"]
        left = (not_after - self._clock().astimezone(UTC)).total_seconds()
        metrics.CERTIFICATE_EXPIRY.labels(file=str(self._path)).set(left)
        return left
