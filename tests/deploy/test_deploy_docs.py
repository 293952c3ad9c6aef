"""docs/deploy.md tells the truth: its Job is deferred with the warning line it shows.

The walkthrough's Job and namespace labels are read from the page itself, sent
through ``carbongate review`` (the webhook's own decision path, offline) with
the policy tree exactly as the dev overlay mounts it, at an hour of the
bundled GB trace that is dirty with a clean night ahead. The warning must have
the shape of the line the page prints, and the page's paths must exist.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import support
from tests.deploy.test_deploy_policies import materialize

PAGE = (support.REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
DEFERRED = re.compile(r"^carbongate: deferred until \d{4}-\d\d-\d\dT\d\d:\d\dZ "
                      r"\((?P<region>[A-Z]+) \d+ gCO2/kWh now, \d+ forecast\); "
                      r"deadline \d{4}-\d\d-\d\dT\d\d:\d\dZ$")
# GB, 17 November 2023 17:00 UTC: 366 gCO2/kWh (LCA), about 110 a few hours later.
DIRTY_EVENING = "2023-11-17T17:00:00Z"


def _walkthrough_job() -> dict[str, Any]:
    (block,) = re.findall(r"```yaml\n\s*# nightly-train.yaml\n(.*?)```", PAGE, re.DOTALL)
    job: dict[str, Any] = yaml.safe_load(block)
    return job


def _walkthrough_labels() -> list[str]:
    (command,) = re.findall(r"kubectl label namespace ml (carbongate\.io/tier=.*?)\n\s*```", PAGE,
                            re.DOTALL)
    return command.replace("\\\n", " ").split()


def _review(job: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "5f0c5d1e-7a52-4c1d-9a47-d0c5e1a2b301",
        "kind": {"group": "batch", "version": "v1", "kind": "Job"},
        "resource": {"group": "batch", "version": "v1", "resource": "jobs"},
        "name": job["metadata"]["name"], "namespace": job["metadata"]["namespace"],
        "operation": "CREATE", "dryRun": False,
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
        "object": job, "oldObject": None}}


def test_the_documented_warning_is_what_the_webhook_says(
    dev: list[dict[str, Any]], tmp_path: Path,
) -> None:
    documented = re.findall(r"^\s*Warning: (carbongate: deferred until .*)$", PAGE, re.MULTILINE)
    assert documented and all(DEFERRED.match(line) for line in documented)
    review = tmp_path / "review.json"
    review.write_text(json.dumps(_review(_walkthrough_job())), encoding="utf-8")
    policies = materialize(dev, "carbongate-webhook", tmp_path / "policies")
    labels = [arg for label in _walkthrough_labels() for arg in ("--namespace-label", label)]
    done = subprocess.run(
        [sys.executable, "-m", "carbongate.cli", "review", str(review), "--json",
         "--now", DIRTY_EVENING, "--policy-dir", str(policies), *labels],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["decision"]["action"] == "defer"
    (warning,) = outcome["warnings"]
    assert DEFERRED.match(warning), warning
    assert {"op": "add", "path": "/spec/suspend", "value": True} in outcome["patch"]


@pytest.mark.parametrize("path", sorted(set(re.findall(
    r"`((?:deploy|policies|tests|docs)/[\w./-]+?)`", PAGE))))
def test_every_path_the_page_names_exists(path: str) -> None:
    assert (support.REPO / path).exists(), path


def test_the_page_names_every_alert(rendered: dict[str, list[dict[str, Any]]]) -> None:
    rule = support.one(rendered["monitoring"], "PrometheusRule", "carbongate")
    for group in rule["spec"]["groups"]:
        for alert in group["rules"]:
            assert f"`{alert['alert']}`" in PAGE, alert["alert"]
