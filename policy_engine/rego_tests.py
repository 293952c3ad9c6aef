"""The Rego test runner: every ``test_*`` rule of the policies, on the embedded engine.

``opa test`` is a separate binary that may not be on a platform team's machine
and would test the policies on another engine than the one that decides. This
runner reads the policy directory with the production loader
(:mod:`policy_engine.loader`: every ``.rego`` plus every ``data.json`` mounted
by directory, ``carbongate/config/data.json`` -> ``data.carbongate.config``)
into one ``OpaEngine``, finds the tests by reading package and rule names,
evaluates them and keeps the coverage the engine reports. It also enforces the
house rule that every policy file has a ``_test.rego`` beside it.

A file that does not parse or compile is reported as a failure naming the file
and line; it is left out and the engine rebuilt without it, so one broken file
does not hide the results of every other test.

The engine prepares (compiles) every distinct query it is asked, which costs
far more than evaluating it, so the tests are evaluated together: one query
reads every test package as a document, where a passing test is ``true`` and a
failing one is absent or false. Only failing tests are run again one by one,
for their message and prints; a runtime error in the joint query falls back to
one query per package, then per test.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import opa_bindings

from policy_engine import errors, loader

TEST_SUFFIX = loader.TEST_SUFFIX
DATA_FILE = loader.DATA_FILE
MAX_REBUILDS = 50

_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
# A test rule starts at the first column: `test_x if {`, `test_x := true if`, `test_x {`.
_TEST_RULE = re.compile(r"^(todo_)?(test_\w+)\b(?!\s*\()", re.MULTILINE)
# Errors as the engine prints them: `path/file.rego:12: rego_type_error: what`, several
# per message, each possibly followed by indented detail lines.
_ERROR_LOCATION = re.compile(
    r"(?P<file>[^\s:]+\.rego):(?P<line>\d+):\s*(?P<what>rego_\w+:.*?)(?=\s*[^\s:]+\.rego:\d+:|\Z)",
    re.DOTALL,
)

ProblemKind = Literal["load", "parse", "compile", "data", "untested", "config"]
# Problems that stop policies from loading: every failing test may follow from them.
BLOCKING = frozenset({"load", "parse", "compile", "data"})
# The platform config and the policy that checks it (configcheck.rego builds one sentence per problem).
CONFIG_CHECK = "carbongate.configcheck.problems"
CONFIG_FILE = "carbongate/config/" + loader.DATA_FILE


class Engine(Protocol):
    """The slice of ``opa_bindings.OpaEngine`` the runner uses (a fake may stand in)."""

    print_handler: Callable[[str, Any], None] | None
    last_coverage: Any

    def add_policy(self, path: str, source: str) -> None: ...

    def add_data(self, value: Any, path: str = "") -> None: ...

    def eval_document(self, path: str, input: Any = None, *, coverage: bool = False) -> Any: ...

    def eval_query(self, query: str, input: Any = None, *, coverage: bool = False) -> Any: ...

    def close(self) -> None: ...


EngineFactory = Callable[[], Engine]


@dataclass(frozen=True)
class TestCase:
    """One test rule found in a ``_test`` package."""

    __test__ = False  # a value, not a pytest class

    package: str
    rule: str
    file: str
    line: int
    todo: bool = False

    @property
    def name(self) -> str:
        return f"data.{self.package}.{self.rule}"


Selector = Callable[[TestCase], bool]


@dataclass(frozen=True)
class Outcome:
    """What happened when one test ran."""

    case: TestCase
    status: Literal["pass", "fail", "skip"]
    detail: str = ""
    prints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """Something wrong with the policy directory itself, counted as a failure."""

    kind: ProblemKind
    file: str
    message: str
    line: int | None = None
    # Found only after a broken file was left out (a test of its rules, now undefined): a knock-on.
    follows: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class FileCoverage:
    """Lines of one file that some test evaluated, and lines none did."""

    file: str
    covered: frozenset[int]
    not_covered: frozenset[int]

    @property
    def percent(self) -> float:
        total = len(self.covered) + len(self.not_covered)
        return 100.0 if total == 0 else 100.0 * len(self.covered) / total


@dataclass(frozen=True)
class TestRun:
    """The result of a run: outcomes, directory problems and (optionally) coverage."""

    __test__ = False  # a value, not a pytest class

    outcomes: tuple[Outcome, ...]
    problems: tuple[Problem, ...]
    coverage: Mapping[str, FileCoverage] = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(1 for o in self.outcomes if o.status == "pass")

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if o.status == "fail") + len(self.problems)

    @property
    def skipped(self) -> int:
        return sum(1 for o in self.outcomes if o.status == "skip")

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0

    def policy_coverage(self) -> dict[str, FileCoverage]:
        """Coverage of the policy files only: a test file covering itself says nothing."""
        return {name: cov for name, cov in sorted(self.coverage.items()) if not name.endswith(TEST_SUFFIX)}

    def total_coverage(self) -> float:
        """Covered share of all policy lines, as the engine counts lines."""
        files = self.policy_coverage().values()
        covered = sum(len(c.covered) for c in files)
        total = covered + sum(len(c.not_covered) for c in files)
        return 100.0 if total == 0 else 100.0 * covered / total


def run(
    policy_dir: Path,
    *,
    coverage: bool = False,
    engine_factory: EngineFactory | None = None,
    select: Selector | None = None,
) -> TestRun:
    """Run every Rego test under ``policy_dir`` on a fresh embedded engine."""
    factory: EngineFactory = engine_factory or _default_engine
    try:
        policy_set = loader.load(policy_dir, include_tests=True)
    except errors.PolicyLoadError as error:
        return TestRun(outcomes=(), problems=_load_problems(error))
    sources = list(policy_set.modules)
    problems = untested_policies(sources)
    data = {document.data_path: document.value for document in policy_set.documents}
    engine, loaded, load_problems = load_engine(sources, data, engine_factory=factory)
    problems = load_problems + problems
    reports: list[Any] = []
    cases = [c for c in discover(sources) if select is None or select(c)]
    try:
        if not load_problems:
            problems += config_problems(engine)
        outcomes = evaluate(engine, [c for c in cases if c.file in loaded], coverage=coverage, reports=reports)
    finally:
        engine.close()
    outcomes += [_not_loaded(c) for c in cases if c.file not in loaded]
    merged = _merge_coverage(reports) if coverage else {}
    return TestRun(outcomes=tuple(outcomes), problems=tuple(problems), coverage=merged)


def config_problems(engine: Engine) -> list[Problem]:
    """The platform config's problems, one per key, as configcheck.rego words them.

    Its test only says ``test_the_shipped_config_is_sound ... undefined``;
    this says which value is wrong. Nothing when the directory has no configcheck.
    """
    try:
        found = engine.eval_document(CONFIG_CHECK, None)
    except opa_bindings.OpaError:  # no configcheck package here, or no config to check
        return []
    if not isinstance(found, list):
        return []
    return [Problem(kind="config", file=CONFIG_FILE, message=str(message)) for message in found]


def untested_policies(sources: Iterable[loader.RegoModule]) -> list[Problem]:
    """Policy files with no ``<name>_test.rego`` beside them."""
    names = {s.path for s in sources}
    return [
        Problem(kind="untested", file=name, message=f"no {Path(name).stem}{TEST_SUFFIX} beside it")
        for name in sorted(names)
        if not name.endswith(TEST_SUFFIX) and name[: -len(".rego")] + TEST_SUFFIX not in names
    ]


def discover(sources: Iterable[loader.RegoModule]) -> list[TestCase]:
    """Test rules (``test_*``, ``todo_test_*``) of packages whose name ends in ``_test``."""
    cases: list[TestCase] = []
    for source in sources:
        package = _PACKAGE.search(source.source)
        if package is None or not package.group(1).endswith("_test"):
            continue
        seen: set[str] = set()
        for match in _TEST_RULE.finditer(source.source):
            rule = (match.group(1) or "") + match.group(2)
            if rule in seen:  # a test written as several rule bodies is one test
                continue
            seen.add(rule)
            line = source.source.count("\n", 0, match.start()) + 1
            cases.append(TestCase(package=package.group(1), rule=rule, file=source.path,
                                  line=line, todo=bool(match.group(1))))
    return cases


def load_engine(
    sources: list[loader.RegoModule],
    data: Mapping[str, Any],
    *,
    engine_factory: EngineFactory,
) -> tuple[Engine, set[str], list[Problem]]:
    """An engine holding every source that parses and compiles, and what was left out.

    Parse errors surface when a module is added, compile errors on the first
    evaluation; either way the faulty files are dropped and a fresh engine is
    built (the engine cannot remove a module), until what is left compiles.
    """
    excluded: set[str] = set()
    problems: list[Problem] = []
    for _ in range(MAX_REBUILDS):
        engine = engine_factory()
        kept = [s for s in sources if s.path not in excluded]
        found = _add_all(engine, kept, data) or _compile_problems(engine)
        if not found:
            return engine, {s.path for s in kept}, problems
        engine.close()
        problems += [dataclasses.replace(p, follows=True) for p in found] if problems else found
        excluded |= _files_to_drop(found, kept)
    raise RuntimeError(f"policies still do not compile after dropping {len(excluded)} files")


def _add_all(engine: Engine, sources: list[loader.RegoModule], data: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for path, value in data.items():
        try:
            engine.add_data(value, path)
        except opa_bindings.OpaError as error:
            problems.append(Problem(kind="data", file=path.replace(".", "/") + "/" + DATA_FILE,
                                    message=error.message))
    for source in sources:
        try:
            engine.add_policy(source.path, source.source)
        except opa_bindings.OpaError as error:
            problems += errors_from_message(error.message, kind="parse", fallback_file=source.path)
    return problems


def _compile_problems(engine: Engine) -> list[Problem]:
    """Compile everything added so far by evaluating a trivial query."""
    try:
        engine.eval_query("true")
    except opa_bindings.OpaError as error:
        return errors_from_message(error.message, kind="compile", fallback_file="")
    return []


def _files_to_drop(problems: list[Problem], kept: list[loader.RegoModule]) -> set[str]:
    names = {s.path for s in kept}
    named = {p.file for p in problems if p.file in names}
    # Data conflicts and errors without a location: drop nothing we could name,
    # so stop by dropping everything (each test then reports "not loaded").
    return named if named else names


def errors_from_message(message: str, *, kind: ProblemKind, fallback_file: str) -> list[Problem]:
    """One problem per ``file:line: what`` in an engine error, else one for the whole message."""
    found = [
        Problem(kind=kind, file=m.group("file"), line=int(m.group("line")),
                message=" ".join(m.group("what").split()))
        for m in _ERROR_LOCATION.finditer(message)
    ]
    return found or [Problem(kind=kind, file=fallback_file, message=message.strip())]


def evaluate(engine: Engine, cases: list[TestCase], *, coverage: bool, reports: list[Any]) -> list[Outcome]:
    """Outcomes of the cases, in their order: jointly first, failures again one by one."""
    packages = sorted({c.package for c in cases if not c.todo})
    documents = _package_documents(engine, packages, coverage=coverage, reports=reports)
    outcomes: list[Outcome] = []
    for case in cases:
        if case.todo:
            outcomes.append(Outcome(case=case, status="skip", detail="todo"))
        elif documents.get(case.package, {}).get(case.rule) is True:
            outcomes.append(Outcome(case=case, status="pass"))
        else:
            outcomes.append(_run_case(engine, case))
    return outcomes


def _package_documents(
    engine: Engine, packages: list[str], *, coverage: bool, reports: list[Any]
) -> dict[str, dict[str, Any]]:
    """Each test package's document (rule name -> value); a package that errors is left out."""
    engine.print_handler = _discard_print
    query = "; ".join(f"p{i} := data.{package}" for i, package in enumerate(packages))
    try:
        bindings = engine.eval_query(query, None, coverage=coverage) if packages else [{}]
    except opa_bindings.OpaError:
        return _one_by_one(engine, packages, coverage=coverage, reports=reports)
    _keep_coverage(engine, coverage, reports)
    row = bindings[0] if bindings else {}
    return {package: _as_document(row.get(f"p{i}")) for i, package in enumerate(packages)}


def _one_by_one(
    engine: Engine, packages: list[str], *, coverage: bool, reports: list[Any]
) -> dict[str, dict[str, Any]]:
    documents: dict[str, dict[str, Any]] = {}
    for package in packages:
        try:
            documents[package] = _as_document(engine.eval_document(package, None, coverage=coverage))
        except opa_bindings.OpaError:
            continue  # its tests run one by one, each reporting its own error
        _keep_coverage(engine, coverage, reports)
    return documents


def _run_case(engine: Engine, case: TestCase) -> Outcome:
    """One test on its own, to say why it failed and show what it printed."""
    prints: list[str] = []
    engine.print_handler = lambda message, _location: prints.append(str(message))
    try:
        value = engine.eval_document(case.name[len("data."):], None)
    except opa_bindings.OpaUndefinedError:
        return Outcome(case=case, status="fail", detail="undefined: a condition of the test did not hold",
                       prints=tuple(prints))
    except opa_bindings.OpaError as error:
        return Outcome(case=case, status="fail", detail=f"error: {error.message}", prints=tuple(prints))
    if value is True:
        return Outcome(case=case, status="pass", prints=tuple(prints))
    return Outcome(case=case, status="fail", detail=f"returned {json.dumps(value)}", prints=tuple(prints))


def _keep_coverage(engine: Engine, coverage: bool, reports: list[Any]) -> None:
    if coverage and engine.last_coverage:
        reports.append(engine.last_coverage)


def _as_document(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _discard_print(_message: str, _location: Any) -> None:
    """Prints of the joint run are dropped: a passing test's prints are noise."""


def _load_problems(error: errors.PolicyLoadError) -> tuple[Problem, ...]:
    found = tuple(Problem(kind="load", file=p.file, line=p.line, message=p.message) for p in error.problems)
    return found or (Problem(kind="load", file="", message=error.summary),)


def _not_loaded(case: TestCase) -> Outcome:
    return Outcome(case=case, status="fail", detail=f"not run: {case.file} was left out (see its errors)")


def _merge_coverage(reports: Iterable[Any]) -> dict[str, FileCoverage]:
    """Union of the per-test reports: a line is covered when any test covered it."""
    covered: dict[str, set[int]] = {}
    seen: dict[str, set[int]] = {}
    for report in reports:
        for name, entry in (report.get("files") or {}).items():
            covered.setdefault(name, set()).update(_rows(entry.get("covered")))
            seen.setdefault(name, set()).update(_rows(entry.get("not_covered")))
    return {
        name: FileCoverage(file=name, covered=frozenset(covered[name]),
                           not_covered=frozenset(seen[name] - covered[name]))
        for name in covered
    }


def _rows(ranges: Any) -> set[int]:
    rows: set[int] = set()
    for item in ranges or []:
        start, end = item["start"]["row"], item["end"]["row"]
        rows.update(range(int(start), int(end) + 1))
    return rows


def _default_engine() -> Engine:
    engine: Engine = opa_bindings.OpaEngine()
    return engine
