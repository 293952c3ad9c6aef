"""The policies ConfigMap ships exactly the policy tree, and a Rego edit rolls the pods.

ConfigMap keys are flat, so each pod's volume ``items`` put every file back
at its path; these tests rebuild the directory a pod sees from the rendered
objects and load it with the real policy loader: same files, same digest
(the ``carbongate.io/policy-version`` annotation) as the source tree.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest

from policy_engine import loader
from tests.deploy import support

render = support.renderer()
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


def test_generated_policy_files_are_in_sync_with_the_policy_tree() -> None:
    files = render.policy_files(support.REPO / "policies" / "rego")
    assert files, "no policy files found"
    hint = "run `python deploy/render.py sync-policies` and commit the result"
    assert render.POLICY_KUSTOMIZATION.read_text(encoding="utf-8") == \
        render.policy_kustomization_text(files), hint
    assert render.POLICY_FILES_PATCH.read_text(encoding="utf-8") == \
        render.policy_files_patch_text(files), hint


@pytest.mark.parametrize("deployment", CONSUMERS)
def test_each_pod_sees_the_same_policy_tree_with_the_same_digest(
    dev: list[dict[str, Any]], tree: Path, deployment: str, tmp_path: Path,
) -> None:
    source = loader.load(tree / "policies" / "rego")
    mounted = loader.load(materialize(dev, deployment, tmp_path / "policies"))
    assert [m.path for m in mounted.modules] == [m.path for m in source.modules]
    assert mounted.data_paths == source.data_paths == frozenset({"carbongate.config"})
    assert mounted.digest == source.digest


def test_tests_are_not_shipped(dev: list[dict[str, Any]]) -> None:
    config_map = support.one(dev, "ConfigMap", "carbongate-policies")
    assert config_map["data"]
    assert not [key for key in config_map["data"] if key.endswith("_test.rego")]


def test_a_rego_edit_renames_the_config_map_and_so_rolls_every_consumer(
    tree: Path, tmp_path: Path,
) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(tree, copy)
    before = render.build(copy / "deploy" / "overlays" / "dev")
    policy = next(p for p in sorted((copy / "policies" / "rego").rglob("*.rego"))
                  if not p.name.endswith("_test.rego"))
    policy.write_text(policy.read_text(encoding="utf-8") + "\n# a platform team's edit\n",
                      encoding="utf-8")
    after = render.build(copy / "deploy" / "overlays" / "dev")
    for name in CONSUMERS:
        old, new = (_policies_config_map(r, name) for r in (before, after))
        assert old != new and new.startswith("carbongate-policies-")
    edited = support.one(after, "ConfigMap", "carbongate-policies")
    key = render.policy_key(policy.relative_to(copy / "policies" / "rego").as_posix())
    assert edited["data"][key].endswith("# a platform team's edit\n")


def _policies_config_map(resources: list[dict[str, Any]], deployment: str) -> str:
    spec = support.pod_spec(support.one(resources, "Deployment", deployment))
    return str(next(v for v in spec["volumes"] if v["name"] == "policies")["configMap"]["name"])


def test_sync_policies_adds_a_new_file_to_both_lists(tree: Path, tmp_path: Path) -> None:
    rego = tmp_path / "rego"
    shutil.copytree(tree / "policies" / "rego", rego)
    new = rego / "carbongate" / "extra" / "extra.rego"
    new.parent.mkdir()
    new.write_text("package carbongate.extra\n\nanswer := 42\n", encoding="utf-8")
    kustomization, patch = tmp_path / "kustomization.yaml", tmp_path / "policy-files.yaml"
    assert render.sync_policies(rego_dir=rego, kustomization=kustomization, patch=patch)
    assert "carbongate.extra.extra.rego=rego/carbongate/extra/extra.rego" in kustomization.read_text()
    assert patch.read_text().count("path: carbongate/extra/extra.rego") == len(CONSUMERS)
    assert not render.sync_policies(rego_dir=rego, kustomization=kustomization, patch=patch)


def test_the_opa_authz_policy_is_shipped_unchanged(dev: list[dict[str, Any]]) -> None:
    shipped = support.one(dev, "ConfigMap", "carbongate-opa-authz")["data"]["authz.rego"]
    assert shipped == (support.REPO / "deploy/base/webhook/opa-authz.rego").read_text(encoding="utf-8")


def test_the_tokens_dev_generates_are_long_distinct_and_all_there(tree: Path) -> None:
    lines = (tree / "deploy/overlays/dev/opa-tokens.env").read_text(encoding="utf-8").splitlines()
    tokens = dict(line.split("=", 1) for line in lines)
    assert set(tokens) == {"webhook", "feed", "governance"}
    assert all(len(value) >= 32 for value in tokens.values())
    assert len(set(tokens.values())) == len(tokens)


def test_dev_tokens_reach_the_secret(dev: list[dict[str, Any]], tree: Path) -> None:
    secret = support.one(dev, "Secret", "carbongate-opa-tokens")
    lines = (tree / "deploy/overlays/dev/opa-tokens.env").read_text(encoding="utf-8").splitlines()
    expected = dict(line.split("=", 1) for line in lines)
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == expected
