"""Fixtures for the deploy tests: the rendered overlays, built once per session.

The dev overlay needs two inputs a person generates per install (the serving
certificate and the OPA tokens). They are generated here the same way, into
a copy of ``deploy/`` and ``policies/`` in a temporary directory, so that the
working tree is never written to.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from certs import authority, files
from tests.deploy import support

OVERLAYS = ("dev", "prod")


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/ and policies/ with the dev overlay's generated inputs in place."""
    root = tmp_path_factory.mktemp("repo")
    ignore = shutil.ignore_patterns("__pycache__", "certs", "opa-tokens.env")
    shutil.copytree(support.REPO / "deploy", root / "deploy", ignore=ignore)
    shutil.copytree(support.REPO / "policies", root / "policies", ignore=ignore)
    dev = root / "deploy" / "overlays" / "dev"
    files.generate(
        out_dir=dev / "certs",
        identity=authority.ServiceIdentity(service="carbongate-webhook", namespace="carbongate"),
        days=30,
        force=False,
        now=datetime.datetime.now(datetime.UTC),
    )
    tokens = subprocess.run([str(dev / "make-tokens")], capture_output=True, text=True,
                            check=True, timeout=30)
    (dev / "opa-tokens.env").write_text(tokens.stdout, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def rendered(tree: Path) -> Mapping[str, list[dict[str, Any]]]:
    """Every overlay (and the monitoring kustomization) rendered by deploy/render.py."""
    renderer = support.renderer()
    targets = {name: tree / "deploy" / "overlays" / name for name in OVERLAYS}
    targets["monitoring"] = tree / "deploy" / "monitoring"
    return {name: renderer.build(path) for name, path in targets.items()}


@pytest.fixture(scope="session")
def dev(rendered: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["dev"]


@pytest.fixture(scope="session")
def prod(rendered: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["prod"]
