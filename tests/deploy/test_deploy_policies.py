"""The policies ConfigMap ships exactly the policy tree, and a Rego edit rolls the pods.

ConfigMap keys are flat, so each pod's volume ``items`` put every file back
at its path; these tests rebuild the directory a pod sees from the rendered
objects and load it with the real policy loader: same files, same digest
(the ``carbongate.io/policy-version`` annotation) as the source tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from policy_engine import loader
from tests.deploy import support

SYNC = support.REPO / "scripts" / "sync_policies.py"
CONSUMERS = ("carbongate-webhook", "carbongate-deferral", "carbongate-governance")


def materialize(resources: list[dict[str, Any]], deployment_name: str, target: Path) -> Path:
    """Write the files of the ``policies`` volume as the kubelet would project them."""
    deployment = support.one(resources, "Deployment", deployment_name)
    volume = next(v for v in support.pod_spec(deployment)["volumes"] if v["name"] == "policies")
    config_map = next(r for r in resources if r["kind"] == "ConfigMap"
                      and r["metadata"]["name"] == volume["configMap"]["name"])
    items = volume["configMap"].get("items") or [{"key": k, "path": k} for k in config_map["data"]]
    for item in items:
        path = target / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config_map["data"][item["key"]], encoding="utf-8")
    return target


def _sync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SYNC), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_generated_policy_files_are_in_sync_with_the_policy_tree() -> None:
    done = _sync("--check")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("deployment", CONSUMERS)
def test_each_pod_sees_the_same_policy_tree_with_the_same_digest(
    dev: list[dict[str, Any]], deployment: str, tmp_path: Path,
) -> None:
    source = loader.load(support.REPO / "policies" / "rego")
    mounted = loader.load(materialize(dev, deployment, tmp_path / "policies"))
    assert [m.path for m in mounted.modules] == [m.path for m in source.modules]
    assert mounted.data_paths == source.data_paths == frozenset({"carbongate.config"})
    assert mounted.digest == source.digest


def test_tests_are_not_shipped(dev: list[dict[str, Any]]) -> None:
    config_map = support.one(dev, "ConfigMap", "carbongate-policies")
    assert config_map["data"]
    assert not [key for key in config_map["data"] if key.endswith("_test.rego")]


def test_a_rego_edit_renames_the_config_map_and_so_rolls_every_consumer(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    for part in ("deploy", "policies"):
        shutil.copytree(support.REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    before = support.kustomize(copy / "deploy" / "overlays" / "dev")
    policy = next(p for p in sorted((copy / "policies" / "rego").rglob("*.rego"))
                  if not p.name.endswith("_test.rego"))
    policy.write_text(policy.read_text(encoding="utf-8") + "\n# a platform team's edit\n",
                      encoding="utf-8")
    after = support.kustomize(copy / "deploy" / "overlays" / "dev")
    for name in CONSUMERS:
        old, new = (_policies_config_map(r, name) for r in (before, after))
        assert old != new and new.startswith("carbongate-policies-")
    edited = support.one(after, "ConfigMap", "carbongate-policies")
    key = policy.relative_to(copy / "policies" / "rego").as_posix().replace("/", ".")
    assert edited["data"][key].endswith("# a platform team's edit\n")


def _policies_config_map(resources: list[dict[str, Any]], deployment: str) -> str:
    spec = support.pod_spec(support.one(resources, "Deployment", deployment))
    return str(next(v for v in spec["volumes"] if v["name"] == "policies")["configMap"]["name"])


def test_sync_policies_adds_a_new_file_and_every_consumer_mounts_it(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    for part in ("deploy", "policies"):
        shutil.copytree(support.REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    new = copy / "policies" / "rego" / "carbongate" / "extra" / "extra.rego"
    new.parent.mkdir()
    new.write_text("package carbongate.extra\n\nanswer := 42\n", encoding="utf-8")
    assert _sync("--check", "--root", str(copy)).returncode == 1
    assert _sync("--root", str(copy)).returncode == 0
    assert _sync("--check", "--root", str(copy)).returncode == 0
    rendered = support.kustomize(copy / "deploy" / "overlays" / "dev")
    for name in CONSUMERS:
        mounted = materialize(rendered, name, tmp_path / name)
        assert (mounted / "carbongate" / "extra" / "extra.rego").read_text() == new.read_text()


def test_the_opa_authz_policy_is_shipped_unchanged(dev: list[dict[str, Any]]) -> None:
    shipped = support.one(dev, "ConfigMap", "carbongate-opa-authz")["data"]["authz.rego"]
    assert shipped == (support.REPO / "deploy/base/webhook/opa-authz.rego").read_text(encoding="utf-8")
