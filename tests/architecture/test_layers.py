"""The layers of docs/architecture.md hold: import-linter's contracts in pyproject.toml pass.

``make lint`` runs ``lint-imports`` too; this test is what CI (``make test``)
runs. It also shows the contracts can fail: the same linter, on a copy of the
packages with one import that breaks a layer, reports that contract broken.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("carbongate", "webhook", "carbon_feed", "deferral", "governance", "certs", "simulate",
            "planner", "policy_engine", "policies")


def _lint(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    only = [argument for contract in contracts for argument in ("--contract", contract)]
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", *only, str(root / "pyproject.toml")],
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120, check=False)


def _copy(target: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, target / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.rego", "*.json"))
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def test_the_tree_keeps_every_import_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract", "reported"), [
    # a component reaching into another one
    ("deferral/listing.py", "from governance import ledger", "layers",
     "deferral.listing -> governance.ledger"),
    # the foundation depending on a component
    ("carbongate/timefmt.py", "import webhook.admission", "foundation",
     "carbongate.timefmt -> webhook.admission"),
    # the kubernetes package used outside carbongate/kube.py
    ("governance/report.py", "import kubernetes.client", "kubernetes",
     "governance.report -> kubernetes"),
])
def test_one_bad_import_breaks_its_contract(tmp_path: Path, module: str, line: str, contract: str,
                                            reported: str) -> None:
    copy = _copy(tmp_path)
    target = copy / module
    assert _lint(copy, contract).returncode == 0  # the copy itself keeps the contract
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")

    result = _lint(copy, contract)

    assert result.returncode != 0, result.stdout
    assert "0 kept, 1 broken" in result.stdout
    assert reported in result.stdout.split("Broken contracts")[1], result.stdout
