"""The one-step installs: ``make deploy-dev`` and ``make manifests``, rendered by the real kubectl kustomize.

The dev install is the session's ``dev_install`` fixture (``scripts/manifests.py
dev``, what ``make deploy-dev`` runs); ``make manifests`` runs for real. A
fresh clone is imitated by copying only the files git tracks.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import support

SCRIPT = support.REPO / "scripts" / "manifests.py"
DIGEST = "sha256:" + "0123456789abcdef" * 4
PAGE = (support.REPO / "docs" / "deploy.md").read_text(encoding="utf-8")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=300, check=False, env=env)


def _tracked_copy(target: Path) -> Path:
    """deploy/, policies/ and scripts/ as a fresh clone has them: tracked files only."""
    listed = subprocess.run(["git", "ls-files", "deploy", "policies", "scripts"], cwd=support.REPO,
                            capture_output=True, text=True, check=True, timeout=60).stdout.split()
    for relative in listed:
        source = support.REPO / relative
        if source.exists():  # a file deleted in the work tree but not yet in git is gone
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    return target


@pytest.mark.parametrize("target", ["overlays/dev", "overlays/prod", "monitoring"])
def test_every_kustomization_renders_on_a_fresh_clone(tmp_path: Path, target: str) -> None:
    clone = _tracked_copy(tmp_path)
    assert support.kustomize(clone / "deploy" / target)


def test_the_installed_kustomize_is_at_least_the_documented_minimum() -> None:
    (documented,) = set(re.findall(r"kustomize (\d+\.\d+) or newer", PAGE))
    printed = subprocess.run([support.kubectl(), "version", "--client"], capture_output=True,
                             text=True, timeout=60, check=True).stdout
    found = re.search(r"Kustomize Version: v?(\d+)\.(\d+)", printed)
    assert found, printed
    assert (int(found.group(1)), int(found.group(2))) >= tuple(int(p) for p in documented.split("."))
    script_minimum = re.search(r"MINIMUM_KUSTOMIZE = \((\d+), (\d+)\)", SCRIPT.read_text(encoding="utf-8"))
    assert script_minimum and ".".join(script_minimum.groups()) == documented


def test_the_dev_install_holds_the_certificate_tokens_and_ca_bundle(
    dev_install: Path, dev: list[dict[str, Any]],
) -> None:
    assert {p.name for p in dev_install.iterdir()} >= {"certs", "opa-tokens.env", "kustomization.yaml",
                                                        "install.yaml"}
    for private in ("opa-tokens.env", "install.yaml", "certs/tls.key", "certs/ca.key"):
        assert stat.S_IMODE((dev_install / private).stat().st_mode) & 0o077 == 0, private
    tls = support.one(dev, "Secret", "carbongate-webhook-tls")
    assert set(tls["data"]) == {"tls.crt", "tls.key", "ca.crt"}  # never ca.key
    (webhook,) = support.one(dev, "MutatingWebhookConfiguration", "carbongate")["webhooks"]
    bundle = base64.b64decode(webhook["clientConfig"]["caBundle"])
    assert bundle == (dev_install / "certs" / "ca.crt").read_bytes()


def test_the_dev_tokens_are_long_distinct_and_reach_the_secret(
    dev_install: Path, dev: list[dict[str, Any]],
) -> None:
    lines = (dev_install / "opa-tokens.env").read_text(encoding="utf-8").splitlines()
    tokens = dict(line.split("=", 1) for line in lines)
    assert set(tokens) == {"webhook", "feed", "governance"}
    assert all(len(value) >= 32 for value in tokens.values())
    assert len(set(tokens.values())) == len(tokens)
    secret = support.one(dev, "Secret", "carbongate-opa-tokens")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == tokens


def test_deploy_dev_again_keeps_the_certificate_and_tokens_and_renew_replaces_them(tmp_path: Path) -> None:
    out = tmp_path / "dev"
    assert _run("dev", "--out", str(out)).returncode == 0
    first = {name: (out / name).read_bytes() for name in ("certs/ca.crt", "opa-tokens.env")}
    assert _run("dev", "--out", str(out)).returncode == 0
    assert {name: (out / name).read_bytes() for name in first} == first
    assert _run("dev", "--out", str(out), "--renew").returncode == 0
    assert all((out / name).read_bytes() != value for name, value in first.items())


def test_make_manifests_writes_one_install_file_pinned_by_digest(tmp_path: Path) -> None:
    out = tmp_path / "install.yaml"
    done = subprocess.run(["make", "--no-print-directory", "-C", str(support.REPO), "manifests",
                           f"INSTALL_YAML={out}", f"IMAGE=registry.example:5000/carbongate@{DIGEST}"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    objects = support.documents(out.read_text(encoding="utf-8"))
    assert objects == support.documents(_render_prod_with_image(tmp_path))
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # no secret in it: prod takes them from your store
    images = {c["image"] for d in support.of_kind(objects, "Deployment") for c in support.containers(d)}
    assert images == {f"registry.example:5000/carbongate@{DIGEST}",
                      "openpolicyagent/opa:1.4.2-static@sha256:"
                      "3c995dc8a59f6ddfd92eb7404d2f7ff9fe71cd025d9251199957a8a6afbfd76e"}
    kinds = [o["kind"] for o in objects]
    assert kinds[0] == "Namespace" and kinds[-1] == "MutatingWebhookConfiguration"


def _render_prod_with_image(scratch: Path) -> str:
    """The same by hand: a kustomization over the prod overlay that sets the image."""
    wrapper = scratch / "by-hand"
    wrapper.mkdir()
    overlay = os.path.relpath(support.REPO / "deploy" / "overlays" / "prod", wrapper)
    (wrapper / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [overlay],
        "images": [{"name": "carbongate", "newName": "registry.example:5000/carbongate", "digest": DIGEST}]}))
    return subprocess.run([support.kubectl(), "kustomize", str(wrapper)], capture_output=True, text=True,
                          timeout=300, check=True).stdout


def test_a_release_image_with_a_malformed_digest_is_refused(tmp_path: Path) -> None:
    done = _run("prod", "--out", str(tmp_path / "install.yaml"), "--image", "registry/carbongate@sha256:abc")
    assert done.returncode == 1 and "64 hex digits" in done.stderr
    assert not (tmp_path / "install.yaml").exists()


def test_a_kubectl_with_too_old_a_kustomize_is_named(tmp_path: Path) -> None:
    """A stand-in kubectl that prints what kubectl 1.26 prints for `version --client`
    (kustomize v4.5.7): the script refuses it with the version it needs."""
    old = tmp_path / "kubectl"
    old.write_text("#!/bin/sh\necho 'Client Version: v1.26.15'\necho 'Kustomize Version: v4.5.7'\n")
    old.chmod(0o755)
    done = _run("prod", "--out", str(tmp_path / "install.yaml"), env={**os.environ, "KUBECTL": str(old)})
    assert done.returncode == 1
    assert "kustomize 4.5; 5.0 or newer is needed" in done.stderr


def test_generated_inputs_stay_out_of_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", "build/deploy-dev/opa-tokens.env", "dist/install.yaml"],
                             cwd=support.REPO, capture_output=True, text=True, timeout=60, check=False)
    assert ignored.stdout.split() == ["build/deploy-dev/opa-tokens.env", "dist/install.yaml"]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_prune_selects_exactly_the_generated_objects(rendered: dict[str, list[dict[str, Any]]],
                                                     overlay: str) -> None:
    """`kubectl apply --prune -l carbongate.io/generated=true` (docs/deploy.md) removes the
    ConfigMaps and Secrets a content change renamed, never anything carbongate or you made
    by hand (governance's published budgets carry the part-of label, not this one)."""
    renamed = {(o["kind"], o["metadata"]["name"]) for o in rendered[overlay]
               if re.search(r"-[a-z0-9]{10}$", o["metadata"]["name"]) and o["kind"] in ("ConfigMap", "Secret")}
    labelled = {(o["kind"], o["metadata"]["name"]) for o in rendered[overlay]
                if (o["metadata"].get("labels") or {}).get("carbongate.io/generated") == "true"}
    assert renamed and renamed <= labelled
    assert {kind for kind, _ in labelled} <= {"ConfigMap", "Secret"}
    command = re.search(r"kubectl apply -f (\S+) --prune -l carbongate\.io/generated=true"
                        r"((?: --prune-allowlist=\S+)+)", PAGE)
    assert command, "docs/deploy.md shows no prune command"
    allowed = set(re.findall(r"--prune-allowlist=(\S+)", command.group(2)))
    assert allowed == {"core/v1/ConfigMap", "core/v1/Secret"}
