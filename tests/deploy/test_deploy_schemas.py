"""Every manifest and every rendered overlay is valid against the Kubernetes 1.30 schemas.

Built-in kinds go through kubernetes-validate in strict mode (unknown fields
are errors, as ``kubectl apply --validate=strict`` makes them); the custom
kinds (cert-manager, Prometheus Operator) through the schemas transcribed
from their published CRDs in :mod:`tests.deploy.crd_schemas`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy import crd_schemas, support

KUBERNETES_VERSION = "1.30"


def validate(resource: Mapping[str, Any]) -> None:
    """Raise with the object and the failing path when ``resource`` is invalid."""
    key = (resource.get("apiVersion"), resource.get("kind"))
    where = f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
    if key in crd_schemas.BY_KIND:
        try:
            jsonschema.validate(resource, crd_schemas.BY_KIND[key])
        except jsonschema.ValidationError as error:
            raise AssertionError(f"{where}: {error.message} at {list(error.absolute_path)}") from error
        return
    try:
        kubernetes_validate.validate(dict(resource), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        raise AssertionError(f"{where}: {error.message} at {list(error.path)}") from error


def _manifest_files() -> list[Path]:
    """Files listed as resources by a kustomization: complete objects, not patches."""
    found: list[Path] = []
    for kustomization in sorted((support.REPO / "deploy").rglob("kustomization.yaml")):
        spec = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
        for entry in spec.get("resources") or []:
            path = (kustomization.parent / entry).resolve()
            if path.is_file():
                found.append(path)
    return found


@pytest.mark.parametrize("overlay", ["dev", "prod", "monitoring"])
def test_every_rendered_object_is_valid(rendered: Mapping[str, list[dict[str, Any]]],
                                        overlay: str) -> None:
    assert rendered[overlay], f"{overlay} rendered nothing"
    for resource in rendered[overlay]:
        validate(resource)


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(support.REPO)))
def test_every_manifest_file_is_valid_on_its_own(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    assert documents
    for document in documents:
        validate(document)


def test_every_resource_file_in_deploy_is_listed_by_a_kustomization() -> None:
    """A manifest nobody includes never reaches a cluster: catch the forgotten file."""
    listed = set(_manifest_files())
    patches: set[Path] = set()
    for kustomization in (support.REPO / "deploy").rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
        patches |= {(kustomization.parent / p["path"]).resolve() for p in spec.get("patches") or []
                    if "path" in p}
    yaml_files = {p.resolve() for p in (support.REPO / "deploy").rglob("*.yaml")
                  if p.name != "kustomization.yaml"}
    generator_inputs = {(support.REPO / "deploy/base/governance/budgets.yaml").resolve(),
                        (support.REPO / "deploy/overlays/prod/providers.yaml").resolve()}
    assert yaml_files - listed - patches - generator_inputs == set()


def test_an_invalid_field_is_caught(dev: list[dict[str, Any]]) -> None:
    """The validator is not a no-op: a misspelt field fails it."""
    deployment = support.one(dev, "Deployment", "carbongate-webhook")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(AssertionError, match="readynessProbe"):
        validate(broken)


def test_an_invalid_custom_resource_is_caught(prod: list[dict[str, Any]]) -> None:
    certificate = yaml.safe_load(yaml.safe_dump(
        support.one(prod, "Certificate", "carbongate-webhook-tls")))
    certificate["spec"]["usages"] = ["server-auth"]
    with pytest.raises(AssertionError, match="server-auth"):
        validate(certificate)
