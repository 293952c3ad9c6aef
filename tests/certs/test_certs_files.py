"""The files on disk: names, modes, atomic replacement and refusal to overwrite."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certs import authority, files


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _generate(out: Path, identity: authority.ServiceIdentity, *, force: bool = False) -> files.Written:
    return files.generate(out_dir=out, identity=identity, days=1, force=force)


def test_writes_the_four_files_kubernetes_tls_secrets_use(
    tmp_path: Path, identity: authority.ServiceIdentity
) -> None:
    _generate(tmp_path / "new" / "dir", identity)
    assert sorted(p.name for p in (tmp_path / "new" / "dir").iterdir()) == [
        "ca.crt", "ca.key", "tls.crt", "tls.key",
    ]


def test_key_files_are_readable_by_the_owner_only(
    tmp_path: Path, identity: authority.ServiceIdentity
) -> None:
    _generate(tmp_path, identity)
    assert _mode(tmp_path / "ca.key") == 0o600
    assert _mode(tmp_path / "tls.key") == 0o600


def test_key_files_are_created_0600_even_with_an_open_umask(
    tmp_path: Path, identity: authority.ServiceIdentity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No chmod afterwards: a key created world-readable, then narrowed, is readable
    in between. Any chmod call fails this test, and umask 0 does not widen the mode."""

    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("keys must be created with their mode, not chmod-ed later")

    monkeypatch.setattr(os, "chmod", forbidden)
    monkeypatch.setattr(os, "fchmod", forbidden)
    previous = os.umask(0)
    try:
        _generate(tmp_path, identity)
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "tls.key") == 0o600
    assert _mode(tmp_path / "ca.key") == 0o600
    assert _mode(tmp_path / "tls.crt") == 0o644


def test_key_files_hold_the_keys_of_the_certificates(
    generated: files.Written,
) -> None:
    for cert_name, key_name in (("ca.crt", "ca.key"), ("tls.crt", "tls.key")):
        cert = x509.load_pem_x509_certificate((generated.directory / cert_name).read_bytes())
        key = serialization.load_pem_private_key(
            (generated.directory / key_name).read_bytes(), password=None
        )
        assert cert.public_key() == key.public_key()


def test_existing_files_are_not_overwritten_without_force(
    tmp_path: Path, identity: authority.ServiceIdentity
) -> None:
    _generate(tmp_path, identity)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(files.FilesExist, match="pass --force") as refused:
        _generate(tmp_path, identity)
    assert {p.name for p in refused.value.paths} == set(before)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_single_existing_file_is_enough_to_refuse(
    tmp_path: Path, identity: authority.ServiceIdentity
) -> None:
    (tmp_path / "tls.key").write_text("someone's key")
    with pytest.raises(files.FilesExist, match="tls.key"):
        _generate(tmp_path, identity)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tls.key"]
    assert (tmp_path / "tls.key").read_text() == "someone's key"


def test_force_replaces_every_file_with_a_new_ca_and_owner_only_keys(
    tmp_path: Path, identity: authority.ServiceIdentity
) -> None:
    first = _generate(tmp_path, identity)
    (tmp_path / "tls.key").chmod(0o644)
    second = _generate(tmp_path, identity, force=True)
    assert second.ca_pem != first.ca_pem
    assert (tmp_path / "ca.crt").read_bytes() == second.ca_pem
    assert _mode(tmp_path / "tls.key") == 0o600
    tls = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    tls.verify_directly_issued_by(x509.load_pem_x509_certificate(second.ca_pem))


def test_no_temporary_files_are_left_behind(
    tmp_path: Path, identity: authority.ServiceIdentity
) -> None:
    _generate(tmp_path, identity)
    _generate(tmp_path, identity, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files.FILE_NAMES)
