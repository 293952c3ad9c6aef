"""Helpers the deploy tests share: rendering with kubectl kustomize, object lookup, pod specs."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import yaml

from carbongate import cli as carbongate_cli

REPO = Path(__file__).resolve().parents[2]
Resource = dict[str, Any]


def kubectl() -> str:
    """kubectl, whose built-in kustomize renders the manifests; installed on every
    development machine and in CI (docs/deploy.md names the version)."""
    found = shutil.which("kubectl")
    assert found, "kubectl is not installed: the deploy tests render with its kustomize (docs/deploy.md)"
    return found


def kustomize(directory: Path) -> list[Resource]:
    """``kubectl kustomize DIRECTORY`` as objects."""
    done = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"kubectl kustomize {directory}: {done.stderr}"
    return documents(done.stdout)


def documents(text: str) -> list[Resource]:
    """The objects of a YAML stream, empty documents dropped."""
    return [document for document in yaml.safe_load_all(text) if document]


def one(resources: Sequence[Resource], kind: str, name: str) -> Resource:
    """The object of this kind whose name is ``name`` (or ``name`` plus a hash suffix)."""
    found = [r for r in resources if r["kind"] == kind and _named(r, name)]
    assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
    return found[0]


def _named(resource: Resource, name: str) -> bool:
    actual = str(resource["metadata"]["name"])
    return actual == name or (actual.startswith(name + "-") and len(actual) == len(name) + 11)


def of_kind(resources: Sequence[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def pod_spec(deployment: Resource) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def containers(deployment: Resource) -> Iterator[dict[str, Any]]:
    spec = pod_spec(deployment)
    yield from spec.get("initContainers") or []
    yield from spec["containers"]


def container(deployment: Resource, name: str) -> dict[str, Any]:
    (found,) = [c for c in containers(deployment) if c["name"] == name]
    return found


def entry_packages(deployment: dict[str, Any]) -> set[str]:
    """The first-party packages a Deployment's containers run, read from their commands."""
    packages: set[str] = set()
    for container in containers(deployment):
        command = [*container.get("command", []), *container.get("args", [])]
        if command[:2] == ["python", "-m"]:
            packages.add(command[2].split(".")[0])
        elif command[:1] == ["carbongate"]:
            packages.add(_subcommand_package(command[1]))
    return packages


def _subcommand_package(subcommand: str) -> str:
    """The component that registered ``carbongate <subcommand>`` (webhook for serve)."""
    parser = carbongate_cli.build_parser()
    (subparsers,) = [a for a in parser._actions if a.dest == "command"]
    choices = cast(dict[str, argparse.ArgumentParser], subparsers.choices)
    handler = choices[subcommand].get_default("handler")
    return str(handler.__module__).split(".")[0]
