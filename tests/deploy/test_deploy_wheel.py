"""The built wheel runs on its own: installed into an empty venv, ``carbongate review`` decides.

The wheel is built from the files git tracks (a fresh clone, not this work
tree), installed into a new venv with the versions of constraints.txt (pip
from PyPI, through its cache) and run from a directory outside any checkout,
so the policies and the demo grid traces can only come from site-packages.
The engine goes in as the Makefile puts it: by itself, with
--ignore-requires-python, below Python 3.14; as a declared dependency above.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy import support

REVIEW = support.REPO / "tests/fixtures/admission/k8s-v1.28-loopback/01_create-job_nightly-train.json"
# GB, 17 November 2023 17:00 UTC in the bundled trace: dirty, with a clean night ahead.
DIRTY_EVENING = "2023-11-17T17:00:00Z"


def _run(command: list[str], *, cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def _fresh_clone(target: Path) -> Path:
    listed = _run(["git", "ls-files", "-z"], cwd=support.REPO).split("\0")
    for relative in filter(None, listed):
        source = support.REPO / relative
        if source.is_symlink() or source.exists():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative, follow_symlinks=False)
    return target


def _setuptools_major() -> int:
    try:
        return int(importlib.metadata.version("setuptools").split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        return 0


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's bin directory, carbongate installed from its wheel."""
    root = tmp_path_factory.mktemp("wheel")
    clone = _fresh_clone(root / "clone")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    # The venv's pinned setuptools builds it (make installs it), which spares setting up an
    # isolated build env; a venv made before that pin builds in isolation.
    isolation = ["--no-build-isolation"] if _setuptools_major() >= 77 else []
    _run([*pip, "wheel", "--no-deps", *isolation, "--wheel-dir", str(root / "dist"), str(clone)], cwd=root)
    (wheel,) = (root / "dist").glob("carbongate-*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], cwd=root, timeout=120)
    python = root / "venv" / "bin" / "python"
    target = [*pip, "--python", str(python), "install", "--quiet", "-c", str(clone / "constraints.txt")]
    if sys.version_info < (3, 14):
        _run([*target, "--ignore-requires-python", "opa-golib-python-bindings"], cwd=root)
    _run([*target, str(wheel)], cwd=root)
    return root / "venv" / "bin"


@pytest.mark.slow
@pytest.mark.xdist_group("wheel")
def test_the_installed_wheel_reviews_a_captured_admission_with_its_bundled_data(
    installed: Path, tmp_path: Path,
) -> None:
    printed = _run([str(installed / "carbongate"), "review", str(REVIEW), "--json", "--now", DIRTY_EVENING,
                    "--namespace-label", "carbongate.io/tier=3"], cwd=tmp_path)
    outcome = json.loads(printed)
    assert outcome["decision"]["action"] == "defer"
    suspend = [op for op in outcome["patch"] if op["path"] == "/spec/suspend"]
    assert [(op["op"] in ("add", "replace"), op["value"]) for op in suspend] == [(True, True)]
    where = _run([str(installed / "python"), "-c",
                  "from carbongate import settings as s; print(s.DEFAULT_POLICY_DIR); print(s.DEMO_GRID_DIR)"],
                 cwd=tmp_path).split()
    assert all("site-packages" in path and str(support.REPO) not in path for path in where), where


@pytest.mark.slow
@pytest.mark.xdist_group("wheel")
def test_the_installed_wheel_says_its_version(installed: Path, tmp_path: Path) -> None:
    import carbongate

    assert _run([str(installed / "carbongate"), "--version"], cwd=tmp_path).strip() == \
        f"carbongate {carbongate.__version__}"


def test_without_the_embedded_engine_help_works_and_says_how_to_install_it() -> None:
    """What a wheel installed by plain pip on Python 3.11-3.13 meets (the engine's
    Requires-Python keeps pip from installing it there): help, and a sentence, not a traceback."""
    install = "pip install --ignore-requires-python opa-golib-python-bindings==0.4.4"
    helped = _without_engine(["--help"])
    assert helped.returncode == 0 and install in " ".join(helped.stdout.split())
    assert "certs" in helped.stdout  # commands that need no engine stay
    refused = _without_engine(["policy", "test"])
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert install in refused.stderr


def _without_engine(argv: list[str]) -> subprocess.CompletedProcess[str]:
    hidden = ("import sys; sys.modules['opa_bindings'] = None; "
              f"from carbongate import cli; sys.exit(cli.main({argv!r}))")
    return subprocess.run([sys.executable, "-c", hidden], cwd=support.REPO, capture_output=True, text=True,
                          timeout=120, check=False)
