"""``carbongate policy test``: run the Rego tests of a policy directory.

A platform team edits ``policies/rego`` (or its own copy) and runs this
before shipping: every ``test_*`` rule on the same embedded engine the webhook
uses, PASS/FAIL per test, a summary, and with ``--coverage`` the share of each
policy file's lines the tests evaluated. The exit code is 1 on any failing
test, any file that does not parse or compile and any policy without a
``_test.rego`` beside it, so CI can gate on it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from carbongate import junit
from carbongate import settings as settings_mod
from policy_engine import rego_tests


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    """Add ``policy test`` to the ``carbongate`` command."""
    policy = subparsers.add_parser("policy", parents=[common], help="work on the Rego policies")
    commands = policy.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    test = commands.add_parser(
        "test", parents=[common], help="run the Rego tests on the embedded engine",
        description="Run every test_* rule of the policies; exit 1 on any failure.",
    )
    test.add_argument("--policy-dir", type=Path, default=None,
                      help="policy directory (default: the engine's policy_dir setting)")
    test.add_argument("--coverage", action="store_true", help="print the coverage of each policy file")
    test.add_argument("--run", metavar="REGEX", default=None,
                      help="only tests whose full name (data.<package>.<rule>) matches")
    test.add_argument("-v", "--verbose", action="store_true",
                      help="print PASS lines too, and the failures that may follow from a compile error")
    test.add_argument("-o", "--output", choices=("text", "json", "junit"), default="text",
                      help="text (default), json, or junit (JUnit XML for CI test reports)")
    test.set_defaults(handler=run_tests)
    policy.set_defaults(handler=lambda _args: _usage(policy))


def run_tests(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Handler of ``carbongate policy test``."""
    stream = out if out is not None else sys.stdout
    try:
        policy_dir = _policy_dir(args)
    except settings_mod.SettingsError as error:
        print(f"carbongate policy test: {error}", file=stream)
        return 2
    if not policy_dir.is_dir():
        print(f"carbongate policy test: no policy directory at {policy_dir}", file=stream)
        return 2
    select = _selector(args.run)
    result = rego_tests.run(policy_dir, coverage=bool(args.coverage), select=select)
    output = getattr(args, "output", "text")
    if output == "json":
        print(json.dumps(as_json(result), indent=2), file=stream)
    elif output == "junit":
        print(as_junit(result), file=stream, end="")
    else:
        report(result, out=stream, verbose=bool(args.verbose), coverage=bool(args.coverage))
    return 0 if result.ok else 1


def report(result: rego_tests.TestRun, *, out: TextIO, verbose: bool, coverage: bool) -> None:
    """Print directory problems first, then outcomes, the summary and (optionally) coverage.

    When a file does not load, parse or compile, its errors are the news: the
    failures that may follow from it (tests of rules that are now undefined)
    are counted, not printed, unless ``verbose``.
    """
    blocked = any(p.kind in rego_tests.BLOCKING or p.kind == "config" for p in result.problems)
    hidden = 0
    for problem in result.problems:
        if problem.follows and not verbose:
            hidden += 1
            continue
        print(f"FAIL {problem}", file=out)
    for outcome in result.outcomes:
        if outcome.status == "pass" and not verbose:
            continue
        if outcome.status == "fail" and blocked and not verbose:
            hidden += 1
            continue
        where = f"{outcome.case.file}:{outcome.case.line}"
        print(f"{outcome.status.upper():4} {outcome.case.name} ({where})"
              f"{': ' + outcome.detail if outcome.detail else ''}", file=out)
        if outcome.status == "fail":
            for line in outcome.prints:
                print(f"       print: {line}", file=out)
    if hidden:
        print(f"({hidden} more failures not shown: they may follow from the errors above; fix those first, "
              "or see them with -v)", file=out)
    skipped = f", {result.skipped} skipped" if result.skipped else ""
    print(f"{result.passed} passed, {result.failed} failed{skipped}", file=out)
    if coverage:
        print_coverage(result, out=out)


def as_json(result: rego_tests.TestRun) -> dict[str, Any]:
    """The run as one document: problems, then each test's outcome."""
    return {
        "ok": result.ok, "passed": result.passed, "failed": result.failed, "skipped": result.skipped,
        "problems": [{"kind": p.kind, "file": p.file, "line": p.line, "message": p.message,
                      "follows": p.follows} for p in result.problems],
        "tests": [{"name": o.case.name, "file": o.case.file, "line": o.case.line, "status": o.status,
                   "detail": o.detail, "prints": list(o.prints)} for o in result.outcomes],
    }


def as_junit(result: rego_tests.TestRun) -> str:
    """JUnit XML: a suite of policy problems (one case per problem), then a suite per test package."""
    cases = [junit.Case(suite="policies", name=f"{p.kind} {p.file}" + (f":{p.line}" if p.line else ""),
                        status="error" if p.kind in rego_tests.BLOCKING else "fail", message=p.message)
             for p in result.problems]
    cases += [junit.Case(suite=f"data.{o.case.package}", name=o.case.rule, status=o.status,
                         message=o.detail, detail="\n".join([o.detail, *o.prints]))
              for o in result.outcomes]
    return junit.render(cases, name="carbongate policy test")


def print_coverage(result: rego_tests.TestRun, *, out: TextIO) -> None:
    """Coverage per policy file, then the total, as the engine counts lines."""
    files = result.policy_coverage()
    width = max((len(name) for name in files), default=10)
    for name, entry in files.items():
        missing = _ranges(sorted(entry.not_covered))
        print(f"  {name:<{width}}  {entry.percent:6.1f}%{'  not covered: ' + missing if missing else ''}",
              file=out)
    print(f"coverage: {result.total_coverage():.1f}%", file=out)


def _policy_dir(args: argparse.Namespace) -> Path:
    if args.policy_dir is not None:
        return Path(args.policy_dir)
    config_file = Path(args.config) if getattr(args, "config", None) else None
    return settings_mod.load(config_file=config_file).engine.policy_dir


def _selector(pattern: str | None) -> rego_tests.Selector | None:
    if pattern is None:
        return None
    compiled = re.compile(pattern)
    return lambda case: compiled.search(case.name) is not None


def _ranges(lines: Sequence[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``: short enough to read in a terminal."""
    spans: list[list[int]] = []
    for line in lines:
        if spans and line == spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
