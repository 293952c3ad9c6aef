"""``carbongate review`` and ``carbongate test`` on plain manifests, as a platform engineer runs them.

The deploy guide's ``nightly-train.yaml`` (a Namespace and a Job, as
``kubectl apply -f`` takes them) used to get ``body is not JSON``; a
Deployment printed ``decision: none (undefined ...)``; ``--now yesterday``
printed Python's ``Invalid isoformat string`` and ``--now 2026-11-22`` exited
1; ``review | head`` ended in a BrokenPipeError traceback. Everything runs on
the real embedded engine with the shipped policies and the bundled traces.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from carbongate import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "nightly-train"
MANIFEST = EXAMPLE / "nightly-train.yaml"
AT = "2023-11-22T17:00:00Z"


def test_the_deploy_guides_manifest_is_reviewed_with_its_namespaces_labels(capsys) -> None:
    assert cli.main(["review", str(MANIFEST), "--now", AT, "--json"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert (outcome["kind"], outcome["decision"]["action"]) == ("Job", "defer")
    assert any(op["path"] == "/spec/suspend" for op in outcome["patch"])


def test_a_namespace_label_on_the_command_line_is_laid_over_the_namespaces(capsys) -> None:
    """dryrun from the flag wins over the Namespace's enforce: nothing is patched."""
    code = cli.main(["review", str(MANIFEST), "--now", AT,
                     "--namespace-label", "carbongate.io/enforcement=dryrun", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["patch"] == []


def test_a_deployment_is_said_to_be_decided_through_its_pods(tmp_path: Path, capsys) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}))
    assert cli.main(["review", str(path), "--now", AT]) == 0
    out = capsys.readouterr().out
    assert "Deployment default/web" in out
    assert "carbongate decides Pods and batch/v1 Jobs, not Deployments" in out
    assert "undefined" not in out


@pytest.mark.parametrize(("now", "says"), [
    ("yesterday", "'yesterday' is not an RFC 3339 instant"),
    ("2026-11-22", "'2026-11-22' is a date, not an instant"),
])
def test_a_bad_now_is_one_clear_line_and_exit_2(now: str, says: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main(["review", str(MANIFEST), "--now", now])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"carbongate review: argument --now: {says}")
    assert "Invalid isoformat" not in err and "Traceback" not in err


def test_a_file_that_is_no_manifest_exits_2_naming_it(tmp_path: Path, capsys) -> None:
    path = tmp_path / "notes.yaml"
    path.write_text("just: [a, list\n")
    assert cli.main(["review", str(path), "--now", AT]) == 2
    assert capsys.readouterr().err.startswith(f"carbongate review: {path}: not YAML")


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``review ... | head -3``: the reader is gone before review writes; no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "carbongate.cli", "review", str(MANIFEST), "--now", AT],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    with process.stderr:
        err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_the_example_suite_passes_in_junit(capsys) -> None:
    assert cli.main(["test", str(EXAMPLE), "-o", "junit"]) == 0
    root = ET.fromstring(capsys.readouterr().out)
    assert root.get("tests") == "2" and root.get("failures") == "0" and root.get("errors") == "0"
    names = [case.get("name") for case in root.iter("testcase")]
    assert "nightly-train-waits-for-the-clean-night Job ml/nightly-train" in names


@pytest.fixture
def suite_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "suite"
    shutil.copytree(EXAMPLE, copy)
    shutil.copytree(ROOT / "examples" / "grid", tmp_path / "grid")
    return copy


def test_a_changed_decision_fails_with_exit_1_and_says_what_differs(suite_copy: Path, capsys) -> None:
    suite_file = suite_copy / "carbongate-test.yaml"
    suite_file.write_text(suite_file.read_text().replace("action: defer", "action: admit", 1))
    assert cli.main(["test", str(suite_copy), "-o", "junit"]) == 1
    root = ET.fromstring(capsys.readouterr().out)
    failure = next(root.iter("failure"))
    assert failure.get("message") == "action: got defer, want admit"
    assert cli.main(["test", str(suite_copy), "-o", "json"]) == 1
    checks = json.loads(capsys.readouterr().out)
    assert [c["status"] for c in checks] == ["fail", "pass"]
    assert checks[0]["patchedResource"]["spec"]["suspend"] is True


def test_a_patched_resource_that_differs_is_shown_as_a_diff(suite_copy: Path, capsys) -> None:
    expected = suite_copy / "expected" / "nightly-train.yaml"
    expected.write_text(expected.read_text().replace("suspend: true", "suspend: false"))
    assert cli.main(["test", str(suite_copy)]) == 1
    out = capsys.readouterr().out
    assert "patched resource differs from expected/nightly-train.yaml" in out
    assert '-    "suspend": false' in out and '+    "suspend": true' in out


def test_a_suite_that_cannot_run_exits_2(suite_copy: Path, capsys) -> None:
    suite_file = suite_copy / "carbongate-test.yaml"
    suite_file.write_text(suite_file.read_text().replace('now: "2023-11-22T17:00:00Z"\n', "", 1))
    assert cli.main(["test", str(suite_copy)]) == 2
    assert "'now' is required" in capsys.readouterr().out


def test_no_suite_found_exits_2(tmp_path: Path, capsys) -> None:
    assert cli.main(["test", str(tmp_path)]) == 2
    assert "no carbongate-test.yaml under" in capsys.readouterr().err


def test_bash_completion_knows_the_subcommands(capsys) -> None:
    assert cli.main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "complete" in script and "review" in script and "--namespace-label" in script
