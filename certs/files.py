"""Writing the CA and serving certificate as the PEM files the webhook mounts.

Four files, the names Kubernetes TLS Secrets and cert-manager use:
``ca.crt``, ``ca.key``, ``tls.crt``, ``tls.key``. Private keys are created
with mode 0600 by ``os.open`` itself, so there is no moment at which another
user could read them (a ``chmod`` after writing leaves such a window). Every
file is written to a temporary name in the same directory and renamed, so a
reader (the webhook reloading its certificate) never sees half a file.

Existing files are never replaced unless asked: a regenerated CA silently
invalidates the ``caBundle`` already installed in a cluster.
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from carbongate import clock, files
from certs import authority

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"
FILE_NAMES = (CA_CERT, CA_KEY, TLS_CERT, TLS_KEY)
KEY_MODE = files.PRIVATE_MODE
CERT_MODE = files.PUBLIC_MODE


class FilesExist(FileExistsError):
    """Some of the files to write exist already and overwriting was not asked for."""

    def __init__(self, paths: tuple[Path, ...]) -> None:
        self.paths = paths
        names = ", ".join(str(p) for p in paths)
        super().__init__(
            f"refusing to overwrite existing {names}; pass --force to replace them "
            "(the cluster's caBundle must then be updated too)"
        )


@dataclass(frozen=True)
class Written:
    """What ``generate`` produced: where the files are and the CA bundle to publish."""

    directory: Path
    ca_pem: bytes

    @property
    def ca_bundle(self) -> str:
        """The CA certificate as the base64 text a webhook configuration's ``caBundle`` takes."""
        return base64.b64encode(self.ca_pem).decode("ascii")


def generate(
    *,
    out_dir: Path,
    identity: authority.ServiceIdentity,
    days: int,
    force: bool,
    now: datetime.datetime | None = None,
) -> Written:
    """Create a CA and a serving certificate for ``identity`` in ``out_dir``."""
    if not force:
        _refuse_existing(out_dir)
    moment = now or clock.utc_now()
    ca = authority.new_authority(identity=identity, days=days, now=moment)
    serving = authority.issue_serving(authority=ca, identity=identity, days=days, now=moment)
    out_dir.mkdir(parents=True, exist_ok=True)
    ca_pem = _certificate_pem(ca)
    files.write_atomically(out_dir / CA_KEY, _key_pem(ca), mode=KEY_MODE)
    files.write_atomically(out_dir / TLS_KEY, _key_pem(serving), mode=KEY_MODE)
    files.write_atomically(out_dir / CA_CERT, ca_pem, mode=CERT_MODE)
    files.write_atomically(out_dir / TLS_CERT, _certificate_pem(serving), mode=CERT_MODE)
    return Written(directory=out_dir, ca_pem=ca_pem)


def _refuse_existing(out_dir: Path) -> None:
    present = tuple(out_dir / n for n in FILE_NAMES if (out_dir / n).exists())
    if present:
        raise FilesExist(present)


def _certificate_pem(issued: authority.Issued) -> bytes:
    return issued.certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(issued: authority.Issued) -> bytes:
    """PKCS#8, unencrypted: gunicorn and OPA read it without a passphrase."""
    return issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
