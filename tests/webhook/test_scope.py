"""Scope and the platform's mandate through `carbongate review`, the real engine and shipped policies.

What issue "Safe by default" asks of the shipped configuration at a dirty hour (GB at 17:00 on the
demo trace): a ReplicaSet's pod in a namespace labelled tier 3 and enforce gets no scheduling gate;
the same pod in an unlabelled namespace is unchanged; a Job labelled tier 1 in a namespace the
platform labelled tier 3 and enforce is still suspended, told why, and annotated.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.webhook import builders
from webhook import state

DIRTY_EVENING = "2026-11-22T17:00:00Z"
TIER3_ENFORCE = ("carbongate.io/tier=3", "carbongate.io/team=ml", "carbongate.io/enforcement=enforce")


def review(path: Path, *labels: str) -> dict[str, Any]:
    arguments = [argument for label in labels for argument in ("--namespace-label", label)]
    done = subprocess.run([sys.executable, "-m", "carbongate.cli", "review", str(path), "--json",
                           "--now", DIRTY_EVENING, *arguments],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    outcome: dict[str, Any] = json.loads(done.stdout)
    return outcome


def with_tier_label(tmp_path: Path, value: str) -> Path:
    document = builders.loopback("01_create-job_nightly-train.json")
    document["request"]["object"]["metadata"]["labels"]["carbongate.io/tier"] = value
    path = tmp_path / "tier-1-job.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


REPLICASET_POD = builders.FIXTURES / "k8s-v1.28-loopback" / "06_create-pod_ci-runner-b6d64db6b.json"


def test_a_replicaset_pod_in_a_tier3_enforced_namespace_gets_no_gate() -> None:
    outcome = review(REPLICASET_POD, *TIER3_ENFORCE)
    assert outcome["decision"]["reason"] == "service"
    assert not any(op["path"].startswith("/spec/schedulingGates") for op in outcome["patch"])
    assert outcome["patch"] == []


def test_the_same_pod_in_an_unlabelled_namespace_is_unchanged() -> None:
    outcome = review(REPLICASET_POD)
    assert outcome["patch"] == [] and outcome["warnings"] == []


def test_a_job_in_an_unlabelled_namespace_is_decided_in_dryrun_and_unchanged() -> None:
    outcome = review(builders.FIXTURES / "k8s-v1.28-loopback" / "01_create-job_nightly-train.json")
    assert outcome["decision"]["mode"] == "dryrun"
    assert outcome["decision"]["action"] == "defer"  # what would have happened
    assert outcome["patch"] == [] and outcome["warnings"] == []


def test_a_job_labelled_tier_1_in_a_tier3_namespace_is_suspended_and_told_why(tmp_path: Path) -> None:
    outcome = review(with_tier_label(tmp_path, "1"), *TIER3_ENFORCE)
    assert outcome["decision"]["tier"] == "3"
    assert {"op": "add", "path": "/spec/suspend", "value": True} in outcome["patch"] or \
        {"op": "replace", "path": "/spec/suspend", "value": True} in outcome["patch"]
    assert outcome["warnings"][0].startswith("carbongate: tier 1 on the workload label is refused: "
                                             "the platform set tier 3 for this namespace")
    assert outcome["decision"]["annotations"]["carbongate.io/tier-refused"] == "1"


def test_a_namespace_allowing_tier_1_lets_the_label_choose(tmp_path: Path) -> None:
    outcome = review(with_tier_label(tmp_path, "1"), *TIER3_ENFORCE, "carbongate.io/allowed-tiers=1,3")
    assert outcome["decision"]["reason"] == "tier-1"
    assert outcome["patch"] == []


# --- namespace labels from a file of Namespace manifests (make run) ------------------------

def test_namespace_labels_come_from_namespace_manifests(tmp_path: Path) -> None:
    path = tmp_path / "namespaces.yaml"
    path.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ml-team\n  labels:\n"
                    "    carbongate.io/tier: '3'\n---\napiVersion: v1\nkind: ConfigMap\n"
                    "metadata: {name: ml-team}\n", encoding="utf-8")
    read = state.file_namespace_reader(path)
    assert read("ml-team") == {"carbongate.io/tier": "3"}
    assert read("elsewhere") == {}


def test_the_shipped_demo_namespaces_opt_ml_team_in() -> None:
    read = state.file_namespace_reader(Path(__file__).resolve().parents[2] / "examples" / "namespaces.yaml")
    assert read("ml-team")["carbongate.io/enforcement"] == "enforce"


def test_an_unreadable_namespace_file_raises_so_the_review_fails_open(tmp_path: Path) -> None:
    with pytest.raises(state.NamespaceFileError):
        state.file_namespace_reader(tmp_path / "missing.yaml")("ml-team")
