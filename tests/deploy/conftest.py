"""Fixtures for the deploy tests: every overlay rendered once per session by the real kubectl kustomize.

The dev install is made as ``make deploy-dev`` makes it (``scripts/manifests.py
dev``: certificate, OPA tokens, a kustomization over ``deploy/overlays/dev``,
``install.yaml``), into a temporary directory, so the working tree is never
written to. prod and monitoring are rendered straight from ``deploy/``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import support


@pytest.fixture(scope="session")
def dev_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``make deploy-dev`` writes: certs/, opa-tokens.env, kustomization.yaml, install.yaml."""
    out = tmp_path_factory.mktemp("deploy-dev")
    done = subprocess.run([sys.executable, str(support.REPO / "scripts" / "manifests.py"), "dev",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def rendered(dev_install: Path) -> Mapping[str, list[dict[str, Any]]]:
    """The dev install as applied, the prod overlay and the monitoring kustomization."""
    return {
        "dev": support.documents((dev_install / "install.yaml").read_text(encoding="utf-8")),
        "prod": support.kustomize(support.REPO / "deploy" / "overlays" / "prod"),
        "monitoring": support.kustomize(support.REPO / "deploy" / "monitoring"),
    }


@pytest.fixture(scope="session")
def dev(rendered: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["dev"]


@pytest.fixture(scope="session")
def prod(rendered: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["prod"]
