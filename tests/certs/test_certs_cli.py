"""`carbongate certs generate` as `make run` calls it."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from carbongate import cli

MAKE_RUN_ARGS = ["certs", "generate", "--service", "carbongate-webhook", "--namespace", "carbongate"]


def _run(out: Path, *extra: str) -> int:
    return cli.main([*MAKE_RUN_ARGS, "--out", str(out), *extra])


def test_printed_bundle_decodes_to_the_ca_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path) == 0
    printed = capsys.readouterr().out.strip()
    decoded = base64.b64decode(printed, validate=True)
    assert decoded == (tmp_path / "ca.crt").read_bytes()
    ca = x509.load_pem_x509_certificate(decoded)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True


def test_standard_output_carries_the_bundle_only_never_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path) == 0
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) == 1
    assert "PRIVATE KEY" not in base64.b64decode(captured.out).decode()
    assert "PRIVATE KEY" not in captured.err
    assert "carbongate-webhook.carbongate.svc" in captured.err


def test_second_run_without_force_exits_1_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path) == 0
    capsys.readouterr()
    assert _run(tmp_path) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "refusing to overwrite existing" in captured.err and "--force" in captured.err


def test_force_and_days_are_honoured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path) == 0
    assert _run(tmp_path, "--force", "--days", "7") == 0
    tls = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    assert (tls.not_valid_after_utc - tls.not_valid_before_utc).days == 7


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--days", "0"], "validity must be between 1 and"),
        (["--service", "Not_A_Name"], "is not a valid Kubernetes Service name"),
    ],
)
def test_bad_input_exits_1_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert _run(tmp_path, *extra) == 1
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_unwritable_output_exits_1_instead_of_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert _run(blocker / "certs") == 1
    assert "cannot write" in capsys.readouterr().err


def test_console_entry_point_generates_certificates(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "carbongate.cli", *MAKE_RUN_ARGS, "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert base64.b64decode(done.stdout.strip()) == (tmp_path / "ca.crt").read_bytes()
