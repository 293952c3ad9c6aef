"""``carbongate test``: declarative admission tests, as ``kyverno test`` runs them, for CI.

A suite file (``carbongate-test.yaml``, found anywhere under the directory
given) holds one or more tests, one per YAML document. Each names the
resources (plain manifests or AdmissionReviews, see :mod:`webhook.manifests`),
the instant, the grid (trace files, or hourly values written in the test), the
budgets and the namespace labels, and states per resource what carbongate must
do: allowed, action, reason, warnings and the resource after the patch. The
decisions come from :class:`webhook.offline.Reviewer`, the webhook's own code
path on the embedded engine, so a Rego edit that changes what happens to a
platform team's workloads fails their CI. The format is in docs/policies.md.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from carbongate import settings as settings_mod
from carbongate import timefmt
from planner import snapshot
from webhook import manifests, offline, patches, reviews

SUITE_FILE = "carbongate-test.yaml"
# The carbongate.io/policy-version annotation in tests: the same before and after a Rego edit,
# so an expected resource changes only where the edit changes what happens.
POLICY_VERSION = "carbongate-test"
API_VERSION = "carbongate.io/v1alpha1"
KIND = "Test"
RESULT_KEYS = {"kind", "namespace", "name", "allowed", "action", "reason", "warnings", "patchedResource", "unchanged"}
TEST_KEYS = {"apiVersion", "kind", "metadata", "description", "now", "homeRegion", "grid", "budgets",
             "namespaces", "resources", "results"}


class SuiteError(ValueError):
    """A suite that cannot be run as written; the message names the file and the key."""


@dataclass(frozen=True)
class Check:
    """One expected result, checked: ``problems`` empty means it passed."""

    suite: str
    test: str
    resource: str
    problems: list[str] = field(default_factory=list)
    error: str = ""
    # The resource after carbongate's patch, when one resource matched.
    patched: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        return "error" if self.error else "fail" if self.problems else "pass"

    def as_json(self) -> dict[str, Any]:
        return {"suite": self.suite, "test": self.test, "resource": self.resource, "status": self.status,
                "problems": self.problems, **({"error": self.error} if self.error else {}),
                **({"patchedResource": self.patched} if self.patched is not None else {})}


@dataclass(frozen=True)
class Test:
    """One test of a suite file, read and checked, paths resolved against the file."""

    file: Path
    name: str
    now: datetime
    resources: list[Path]
    results: list[Mapping[str, Any]]
    grid: Mapping[str, Any]
    budgets: Mapping[str, Any] | None
    namespaces: Mapping[str, Mapping[str, str]]
    home_region: str | None


def find(paths: list[Path]) -> list[Path]:
    """The suite files: each path is a suite file or a directory searched for ``carbongate-test.yaml``."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(path.rglob(SUITE_FILE))
        elif path.is_file():
            found.append(path)
        else:
            raise SuiteError(f"{path}: no such file or directory")
    if not found:
        raise SuiteError(f"no {SUITE_FILE} under {', '.join(map(str, paths))}")
    return found


def run(paths: list[Path], *, settings: settings_mod.Settings) -> list[Check]:
    """Every test of every suite file under ``paths``, on one engine built from ``settings``."""
    files = find(paths)
    reviewer = offline.Reviewer(settings, policy_version=POLICY_VERSION)
    checks: list[Check] = []
    try:
        for file in files:
            try:
                tests = list(load(file))
            except SuiteError as error:
                checks.append(Check(suite=str(file), test="", resource="", error=str(error)))
                continue
            for test in tests:
                checks += run_test(test, reviewer=reviewer, settings=settings)
    finally:
        reviewer.close()
    return checks


def load(file: Path) -> Iterator[Test]:
    """The tests of one suite file, checked before any runs."""
    try:
        documents = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise SuiteError(f"{file}: cannot read: {' '.join(str(error).split())}") from error
    for index, document in enumerate(documents, start=1):
        yield _test(file, index, document)


def _test(file: Path, index: int, document: Any) -> Test:
    where = f"{file}#{index}"
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise SuiteError(f"{where}: not a test: wants apiVersion: {API_VERSION} and kind: {KIND}")
    unknown = sorted(set(document) - TEST_KEYS)
    if unknown:
        raise SuiteError(f"{where}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(TEST_KEYS))})")
    name = str((document.get("metadata") or {}).get("name") or f"test-{index}")
    try:
        now = timefmt.parse_time(str(document["now"]))
    except KeyError:
        raise SuiteError(f"{where}: 'now' is required (an RFC 3339 instant: tests never read the clock)") from None
    except ValueError as error:
        raise SuiteError(f"{where}: now: {error}") from error
    base = file.parent
    resources = [base / str(r) for r in _list(document, "resources", where)]
    if not resources:
        raise SuiteError(f"{where}: 'resources' names no file")
    results = _list(document, "results", where)
    for number, result in enumerate(results, start=1):
        if not isinstance(result, dict):
            raise SuiteError(f"{where}: results[{number}] must be a mapping")
        extra = sorted(set(result) - RESULT_KEYS)
        if extra:
            raise SuiteError(f"{where}: results[{number}]: unknown keys {', '.join(extra)}")
    budgets = document.get("budgets")
    if isinstance(budgets, str):
        budgets = _read_document(base / budgets, where)
    namespaces = document.get("namespaces") or {}
    if not isinstance(namespaces, dict) or not all(isinstance(v, dict) for v in namespaces.values()):
        raise SuiteError(f"{where}: namespaces must map a namespace to its labels")
    grid = document.get("grid") or {}
    if not isinstance(grid, dict) or not set(grid) <= {"traces", "hourly", "stale"}:
        raise SuiteError(f"{where}: grid takes traces: [files] or hourly: {{REGION: values}} (and stale: [REGION])")
    return Test(file=file, name=name, now=now, resources=resources, results=results,
                grid={**grid, "traces": [base / str(t) for t in grid.get("traces") or []]},
                budgets=budgets, namespaces={str(k): {str(a): str(b) for a, b in v.items()}
                                             for k, v in namespaces.items()},
                home_region=document.get("homeRegion"))


def run_test(test: Test, *, reviewer: offline.Reviewer, settings: settings_mod.Settings) -> list[Check]:
    """Decide every resource of ``test`` and check each expected result."""
    suite = str(test.file)
    try:
        outcomes = decide(test, reviewer=reviewer, settings=settings)
    except (manifests.ManifestError, offline.ReviewError, ValueError) as error:
        return [Check(suite=suite, test=test.name, resource="", error=str(error))]
    checks = []
    for expected in test.results:
        matching = [o for o in outcomes if matches(o.request, expected)]
        resource = _describe(expected, matching)
        if len(matching) != 1:
            problem = "no resource matches" if not matching else f"{len(matching)} resources match; name one"
            checks.append(Check(suite=suite, test=test.name, resource=resource, problems=[problem]))
            continue
        try:
            problems = compare(matching[0], expected, base=test.file.parent)
        except SuiteError as error:
            checks.append(Check(suite=suite, test=test.name, resource=resource, error=str(error)))
            continue
        checks.append(Check(suite=suite, test=test.name, resource=resource, problems=problems,
                            patched=patched(matching[0])))
    return checks


def decide(test: Test, *, reviewer: offline.Reviewer, settings: settings_mod.Settings) -> list[offline.Outcome]:
    """Every resource of ``test`` decided at its instant on its grid, budgets and namespace labels."""
    found = manifests.read(test.resources)
    grid = _grid(test, settings)
    outcomes = []
    for request in found.requests:
        # The test's own namespaces: replace what a Namespace in the resources says.
        labels = test.namespaces.get(request.namespace, found.namespace_labels.get(request.namespace, {}))
        outcomes.append(reviewer.decide(request, now=test.now, grid=grid, budgets=test.budgets,
                                        namespace_labels=labels, home_region=test.home_region))
    return outcomes


def compare(outcome: offline.Outcome, expected: Mapping[str, Any], *, base: Path) -> list[str]:
    """What differs between the outcome and the expected result, one sentence each."""
    problems: list[str] = []
    response = outcome.result.response["response"]
    decision = outcome.result.decision or {}
    if response["allowed"] is not expected.get("allowed", True):
        problems.append(f"allowed: got {response['allowed']}, want {expected.get('allowed', True)}")
    if "action" in expected and decision.get("action", "none") != expected["action"]:
        problems.append(f"action: got {decision.get('action', 'none')}, want {expected['action']}")
    if "reason" in expected and decision.get("reason") != expected["reason"]:
        problems.append(f"reason: got {decision.get('reason')}, want {expected['reason']}")
    if "warnings" in expected and response.get("warnings", []) != list(expected["warnings"] or []):
        problems.append(f"warnings: got {response.get('warnings', [])}, want {expected['warnings']}")
    original = outcome.request.object or {}
    after = patched(outcome)
    if expected.get("unchanged") and after != original:
        problems.append("patched resource: changed, want unchanged:\n" + _diff(original, after))
    if "patchedResource" in expected:
        want = _read_document(base / str(expected["patchedResource"]), str(expected["patchedResource"]))
        got = _as_declared(after, want)
        if got != want:
            problems.append(f"patched resource differs from {expected['patchedResource']}:\n" + _diff(want, got))
    return problems


def patched(outcome: offline.Outcome) -> dict[str, Any]:
    """The resource as the API server would store it after carbongate's patch."""
    return patches.apply_patch(outcome.request.object or {}, reviews.decoded_patch(outcome.result.response))


def hourly_grid(now: datetime, hourly: Mapping[str, Any], *, stale: list[str]) -> snapshot.GridSnapshot:
    """A grid whose data was observed at ``now`` with the given hourly forecast from ``now`` on.

    ``"412*3, 96*2, 300"`` is 412 for three hours, 96 for two, then 300: the
    situation a test is about, written where it is read.
    """
    stamp = timefmt.format_time(now)
    regions: dict[str, snapshot.RegionDoc] = {}
    for name, values in hourly.items():
        series = _expand(values, name)
        regions[str(name)] = {
            "region": str(name), "g_per_kwh": series[0], "signal": "average", "source": "carbongate-test",
            "observed_at": stamp, "stale": name in stale, "forecast_step_s": 3600,
            "forecast": [{"start": timefmt.format_time(now + timedelta(hours=i)), "g_per_kwh": v}
                         for i, v in enumerate(series)],
            "best_windows": {},
        }
    return snapshot.check_snapshot({"schema": snapshot.SCHEMA_VERSION, "generated_at": stamp, "regions": regions})


def _grid(test: Test, settings: settings_mod.Settings) -> snapshot.GridSnapshot:
    grid = test.grid
    if grid.get("hourly"):
        return hourly_grid(test.now, grid["hourly"], stale=[str(s) for s in grid.get("stale") or []])
    traces = tuple(grid["traces"]) or offline.demo_traces()
    return offline.grid_from_traces(traces, now=test.now, settings=settings)


def _expand(values: Any, region: str) -> list[float]:
    if isinstance(values, list):
        return [float(v) for v in values]
    expanded: list[float] = []
    try:
        for part in str(values).split(","):
            value, _, count = part.strip().partition("*")
            expanded += [float(value)] * int(count or 1)
    except ValueError:
        raise ValueError(f"grid.hourly.{region}: {values!r} is not like '412*3, 96*2, 300'") from None
    return expanded


def matches(request: reviews.Request, expected: Mapping[str, Any]) -> bool:
    metadata = (request.object or {}).get("metadata") or {}
    names = {request.name, str(metadata.get("name") or ""), str(metadata.get("generateName") or "")}
    return (expected.get("kind", request.kind) == request.kind
            and expected.get("namespace", request.namespace) == request.namespace
            and ("name" not in expected or expected["name"] in names))


def _describe(expected: Mapping[str, Any], matching: list[offline.Outcome]) -> str:
    if len(matching) == 1:
        request = matching[0].request
        generated = ((request.object or {}).get("metadata") or {}).get("generateName")
        return f"{request.kind} {request.namespace}/{request.name or generated}"
    return " ".join(f"{k}={expected[k]}" for k in ("kind", "namespace", "name") if k in expected) or "(any)"


def _as_declared(got: dict[str, Any], want: Mapping[str, Any]) -> dict[str, Any]:
    """``got`` without the namespace the review filled in, when the expected resource names none."""
    if "namespace" in (want.get("metadata") or {}):
        return got
    metadata = {k: v for k, v in (got.get("metadata") or {}).items() if k != "namespace"}
    return {**got, "metadata": metadata}


def _read_document(path: Path, where: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise SuiteError(f"{where}: cannot read {path}: {' '.join(str(error).split())}") from error
    if not isinstance(document, dict):
        raise SuiteError(f"{where}: {path} must hold one object")
    return document


def _list(document: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = document.get(key) or []
    if not isinstance(value, list):
        raise SuiteError(f"{where}: {key} must be a list")
    return value


def _diff(want: Any, got: Any, limit: int = 40) -> str:
    lines = list(difflib.unified_diff(
        json.dumps(want, indent=2, sort_keys=True).splitlines(),
        json.dumps(got, indent=2, sort_keys=True).splitlines(),
        fromfile="want", tofile="got", lineterm="", n=2))
    shown = lines[:limit] + ([f"... {len(lines) - limit} more lines"] if len(lines) > limit else [])
    return "\n".join(shown)
