"""How long the serving certificate has left, as a metric (docs/webhook.md, "No silent failure").

An expired certificate does not stop carbongate: the API server cannot
complete the TLS handshake, ignores the webhook (``failurePolicy: Ignore``)
and admits every workload unchanged. So the webhook reads the certificate it
serves (``webhook.certfile``, which gunicorn loads for every new connection,
so a renewed file is what clients get) and exports the seconds left,
``carbongate_webhook_certificate_expiry_seconds``; the alerts fire weeks
before the end. The file is parsed again only when it changes; the seconds
left are recomputed on every data sync.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from carbongate import files
from webhook import metrics


def load_not_after(path: Path) -> Mapping[str, Any]:
    """The first certificate's end of validity, from a PEM file (ValueError when unreadable)."""
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    return {"not_after": certificate.not_valid_after_utc}


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
