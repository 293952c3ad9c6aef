"""The Rego test runner reports what a platform team needs to see, on the real engine.

Each test writes a small policy directory and runs the runner over it:
passing, failing and erroring tests, files that do not parse or compile (named
with file and line, without hiding the other files' results), policies
without tests, data files mounted by directory, coverage, and the
``carbongate policy test`` command around it.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from carbongate import cli as carbongate_cli
from policy_engine import cli as policy_cli
from policy_engine import rego_tests
from tests.policies.conftest import GREETING, GREETING_TEST, Files, PolicyTree

FAILING_TEST = """package demo.greeting_test

import rego.v1

import data.demo.greeting

test_greets_by_name if greeting.message("ml") == "hello ml"

test_greets_rudely if {
	print("got", greeting.message("ml"))
	greeting.message("ml") == "go away"
}

test_returns_false := false

todo_test_greets_in_norwegian if greeting.message("ml") == "hei ml"
"""

UNSAFE = """package demo.broken

import rego.v1

answer := unknown_variable
"""

UNSAFE_TEST = """package demo.broken_test

import rego.v1

import data.demo.broken

test_answer if broken.answer == 42
"""

BROKEN_FILES = {"demo/broken/broken.rego": UNSAFE, "demo/broken/broken_test.rego": UNSAFE_TEST}


def outcome(run: rego_tests.TestRun, rule: str) -> rego_tests.Outcome:
    (found,) = [o for o in run.outcomes if o.case.rule == rule]
    return found


def test_a_sound_directory_passes_with_full_coverage(policy_tree: PolicyTree, greeting_files: Files) -> None:
    run = rego_tests.run(policy_tree(greeting_files), coverage=True)
    assert (run.passed, run.failed, run.ok) == (2, 0, True)
    assert [o.case.name for o in run.outcomes] == [
        "data.demo.greeting_test.test_greets_by_name",
        "data.demo.greeting_test.test_is_loud_above_five",
    ]
    assert run.policy_coverage()["demo/greeting/greeting.rego"].percent == 100.0


def test_failing_tests_are_reported_with_why_and_what_they_printed(policy_tree: PolicyTree) -> None:
    root = policy_tree({"demo/greeting/greeting.rego": GREETING, "demo/greeting/greeting_test.rego": FAILING_TEST})
    run = rego_tests.run(root)
    assert (run.passed, run.failed, run.skipped, run.ok) == (1, 2, 1, False)
    rude = outcome(run, "test_greets_rudely")
    assert rude.status == "fail"
    assert rude.detail.startswith("undefined")
    assert rude.prints == ("got hello ml",)
    assert rude.case.line == 9
    assert outcome(run, "test_returns_false").detail == "returned false"
    assert outcome(run, "todo_test_greets_in_norwegian").status == "skip"


def test_a_runtime_error_fails_its_test_and_not_its_neighbours(policy_tree: PolicyTree, greeting_files: Files) -> None:
    boom = GREETING_TEST + '\ntest_divides if {\n\tx := 0\n\t1 / x == 1\n}\n'
    run = rego_tests.run(policy_tree({**greeting_files, "demo/greeting/greeting_test.rego": boom}))
    assert outcome(run, "test_divides").detail.startswith("error:")
    assert "divide by zero" in outcome(run, "test_divides").detail
    assert outcome(run, "test_greets_by_name").status == "pass"
    assert (run.passed, run.failed) == (2, 1)


def test_an_uncompilable_policy_is_named_and_the_rest_runs(policy_tree: PolicyTree, greeting_files: Files) -> None:
    root = policy_tree({**greeting_files, **BROKEN_FILES})
    run = rego_tests.run(root)
    assert [(p.kind, p.file, p.line) for p in run.problems] == [("compile", "demo/broken/broken.rego", 5)]
    assert "unknown_variable is unsafe" in run.problems[0].message
    # The test file itself compiles (it reads a rule, which is now undefined).
    assert outcome(run, "test_answer").detail.startswith("undefined")
    assert outcome(run, "test_greets_by_name").status == "pass"
    assert not run.ok


def test_a_policy_that_does_not_parse_is_named_with_its_line(policy_tree: PolicyTree, greeting_files: Files) -> None:
    broken = GREETING.replace('loud if input.volume > 5', 'loud if input.volume > > 5')
    run = rego_tests.run(policy_tree({**greeting_files, "demo/greeting/greeting.rego": broken}))
    parse = [p for p in run.problems if p.kind == "parse"]
    assert parse and parse[0].file == "demo/greeting/greeting.rego" and parse[0].line == 9
    assert run.passed == 0 and not run.ok


def test_a_policy_without_a_test_file_is_reported(policy_tree: PolicyTree, greeting_files: Files) -> None:
    root = policy_tree({**greeting_files, "demo/lonely/lonely.rego": "package demo.lonely\n\nanswer := 42\n"})
    run = rego_tests.run(root)
    assert [(p.kind, p.file) for p in run.problems] == [("untested", "demo/lonely/lonely.rego")]
    assert run.passed == 2 and not run.ok


def test_data_files_are_mounted_by_their_directory(policy_tree: PolicyTree) -> None:
    root = policy_tree({
        "demo/config/data.json": {"greeting": "hej"},
        "demo/hello/hello.rego": "package demo.hello\n\nimport rego.v1\n\nword := data.demo.config.greeting\n",
        "demo/hello/hello_test.rego": (
            'package demo.hello_test\n\nimport rego.v1\n\ntest_word if data.demo.hello.word == "hej"\n'
        ),
    })
    run = rego_tests.run(root)
    assert (run.passed, run.failed) == (1, 0)


def test_an_invalid_data_file_is_a_load_failure(policy_tree: PolicyTree, greeting_files: Files) -> None:
    root = policy_tree(greeting_files)
    (root / "demo" / "config").mkdir()
    (root / "demo" / "config" / "data.json").write_text("{not json", encoding="utf-8")
    run = rego_tests.run(root)
    assert [(p.kind, p.file) for p in run.problems] == [("load", "demo/config/data.json")]
    assert not run.ok


def test_a_directory_without_tests_is_not_ok(policy_tree: PolicyTree) -> None:
    root = policy_tree({"demo/a/a.rego": "package demo.a\n\nx := 1\n", "demo/a/a_test.rego": "package demo.a_test\n"})
    run = rego_tests.run(root)
    assert (run.passed, run.failed, run.ok) == (0, 0, False)


def test_coverage_names_the_lines_no_test_reached(policy_tree: PolicyTree, greeting_files: Files) -> None:
    only_message = GREETING_TEST.replace('test_is_loud_above_five if greeting.loud with input as {"volume": 6}', "")
    run = rego_tests.run(policy_tree({**greeting_files, "demo/greeting/greeting_test.rego": only_message}),
                         coverage=True)
    greeting = run.policy_coverage()["demo/greeting/greeting.rego"]
    assert 9 in greeting.not_covered and 7 in greeting.covered
    assert greeting.percent < 100.0
    assert "demo/greeting/greeting_test.rego" not in run.policy_coverage()


def test_tests_of_a_file_that_does_not_compile_are_not_run(policy_tree: PolicyTree, greeting_files: Files) -> None:
    calls_missing = GREETING_TEST + '\ntest_shouts if greeting.shout("ml") == "HELLO ML"\n'
    run = rego_tests.run(policy_tree({**greeting_files, "demo/greeting/greeting_test.rego": calls_missing}))
    assert [(p.kind, p.file, p.line) for p in run.problems] == [("compile", "demo/greeting/greeting_test.rego", 11)]
    details = {o.detail for o in run.outcomes}
    assert details == {"not run: demo/greeting/greeting_test.rego was left out (see its errors)"}
    assert run.failed == 4


def test_a_test_written_in_several_bodies_is_one_test(policy_tree: PolicyTree, greeting_files: Files) -> None:
    twice = GREETING_TEST + '\ntest_greets_by_name if greeting.message("x") == "hello x"\n'
    run = rego_tests.run(policy_tree({**greeting_files, "demo/greeting/greeting_test.rego": twice}))
    assert [o.case.rule for o in run.outcomes].count("test_greets_by_name") == 1


def test_engine_errors_split_into_one_problem_per_location() -> None:
    message = ("bundle activation failed: 2 errors occurred: a/b.rego:3: rego_type_error: undefined function f\n"
               "\thave: (number)\n\twant: (string)\nc.rego:9: rego_unsafe_var_error: var y is unsafe")
    problems = rego_tests.errors_from_message(message, kind="compile", fallback_file="")
    assert [(p.file, p.line) for p in problems] == [("a/b.rego", 3), ("c.rego", 9)]
    assert problems[0].message == "rego_type_error: undefined function f have: (number) want: (string)"
    assert rego_tests.errors_from_message("boom", kind="compile", fallback_file="x.rego")[0].file == "x.rego"


# ---------------------------------------------------------------- carbongate policy test


def run_cli(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    policy_cli.register(parser.add_subparsers(dest="command"), argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(list(argv))
    out = io.StringIO()
    return policy_cli.run_tests(args, out=out), out.getvalue()


def test_the_command_prints_a_summary_and_coverage(policy_tree: PolicyTree, greeting_files: Files) -> None:
    code, text = run_cli("policy", "test", "--policy-dir", str(policy_tree(greeting_files)), "--coverage", "-v")
    assert code == 0
    assert "PASS data.demo.greeting_test.test_greets_by_name (demo/greeting/greeting_test.rego:7)" in text
    assert "2 passed, 0 failed" in text
    assert "demo/greeting/greeting.rego" in text and "100.0%" in text
    assert "coverage: 100.0%" in text


def test_the_command_fails_on_a_failing_test(policy_tree: PolicyTree) -> None:
    root = policy_tree({"demo/greeting/greeting.rego": GREETING, "demo/greeting/greeting_test.rego": FAILING_TEST})
    code, text = run_cli("policy", "test", "--policy-dir", str(root))
    assert code == 1
    assert "FAIL data.demo.greeting_test.test_greets_rudely (demo/greeting/greeting_test.rego:9): undefined" in text
    assert "print: got hello ml" in text
    assert "PASS" not in text
    assert "1 passed, 2 failed, 1 skipped" in text


def test_the_command_names_problems_and_can_select_tests(policy_tree: PolicyTree, greeting_files: Files) -> None:
    root = policy_tree({**greeting_files, **BROKEN_FILES})
    code, text = run_cli("policy", "test", "--policy-dir", str(root), "--run", "greeting")
    assert code == 1
    assert "FAIL demo/broken/broken.rego:5: compile: rego_unsafe_var_error" in text
    assert "2 passed, 1 failed" in text


def test_the_command_refuses_a_missing_directory(tmp_path: Path) -> None:
    code, text = run_cli("policy", "test", "--policy-dir", str(tmp_path / "nowhere"))
    assert code == 2
    assert "no policy directory" in text


def test_carbongate_policy_test_runs_the_shipped_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert carbongate_cli.main(["policy", "test"]) == 0
    assert " passed, 0 failed" in capsys.readouterr().out


# ---------------------------------------------------------------- pointing at the problem
# On a copy of the shipped policies, as a platform team edits them.

SHIPPED = Path(__file__).resolve().parents[2] / "policies" / "rego"


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(SHIPPED, tmp_path / "rego"))


def test_a_syntax_error_is_shown_first_and_alone(shipped_copy: Path) -> None:
    """One missing brace used to print dozens of knock-on FAIL lines before the real rego_parse_error."""
    policy = shipped_copy / "carbongate" / "configcheck" / "configcheck.rego"
    policy.write_text(policy.read_text().replace("known_modes := {", "known_modes := {{", 1))
    code, text = run_cli("policy", "test", "--policy-dir", str(shipped_copy))
    assert code == 1
    lines = text.splitlines()
    assert lines[0].startswith("FAIL carbongate/configcheck/configcheck.rego:14: parse: rego_parse_error")
    assert not any(line.startswith("FAIL data.") or "_test.rego" in line for line in lines)
    assert any("more failures not shown: they may follow from the errors above" in line for line in lines)
    _, verbose = run_cli("policy", "test", "--policy-dir", str(shipped_copy), "-v")
    assert "FAIL data.carbongate.configcheck_test" in verbose


def test_config_problems_are_named_one_per_key(shipped_copy: Path) -> None:
    import json

    config_file = shipped_copy / "carbongate" / "config" / "data.json"
    config = json.loads(config_file.read_text())
    config["tiers"]["3"]["max_delay_s"] = -5
    config["tiers"]["2"]["threshold_g_per_kwh"] = "200"
    config["default_mode"] = "denny"
    config_file.write_text(json.dumps(config))
    code, text = run_cli("policy", "test", "--policy-dir", str(shipped_copy))
    assert code == 1
    for message in ("tiers.3.max_delay_s must be a number >= 0", "tiers.2.threshold_g_per_kwh must be a number >= 0",
                    "default_mode is not one of enforce, warn, dryrun, off"):
        assert f"FAIL carbongate/config/data.json: config: {message}" in text
    assert "test_the_shipped_config_is_sound" not in text


def test_json_and_junit_output_for_ci(policy_tree: PolicyTree, greeting_files: Files) -> None:
    import json
    import xml.etree.ElementTree as ET

    root = policy_tree({**greeting_files, **BROKEN_FILES})
    code, text = run_cli("policy", "test", "--policy-dir", str(root), "-o", "json")
    document = json.loads(text)
    assert code == 1 and document["ok"] is False
    assert document["problems"][0]["kind"] == "compile" and document["problems"][0]["line"] == 5
    assert {t["name"]: t["status"] for t in document["tests"]}["data.demo.greeting_test.test_greets_by_name"] == "pass"
    code, text = run_cli("policy", "test", "--policy-dir", str(root), "-o", "junit")
    xml = ET.fromstring(text)
    assert code == 1 and xml.get("errors") == "1"
    error = next(xml.iter("error"))
    assert "unknown_variable is unsafe" in (error.text or "")
    names = {case.get("name") for case in xml.iter("testcase")}
    assert names >= {"test_greets_by_name", "compile demo/broken/broken.rego:5"}
