"""Policy edits on the embedded engine: accepted edits swap in, bad ones are rejected
before the swap and the previous policies keep answering; the watcher finds edits."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from policy_engine import embedded, errors, loader, watcher
from tests.policy_engine.conftest import decide, grid, metric, write

DECISION_FILE = "carbongate/admission/decision.rego"


def edit_threshold(policy_dir: Path, threshold: int) -> None:
    write(policy_dir / "carbongate/config/data.json",
          f'{{"home_region": "GB", "threshold_g_per_kwh": {threshold}}}')


def break_decision(policy_dir: Path, rego: str) -> None:
    write(policy_dir / DECISION_FILE, "package carbongate.admission\n\n" + rego)


@pytest.fixture
def serving(engine: embedded.EmbeddedEngine) -> embedded.EmbeddedEngine:
    """The fixture engine with grid data, deferring at GB 412 g/kWh (threshold 300)."""
    engine.put_data("grid", grid(GB=412.0))
    assert decide(engine, {"kind": "Pod"})["action"] == "defer"
    return engine


def test_an_accepted_edit_changes_decisions_and_the_version(
        serving: embedded.EmbeddedEngine, policy_dir: Path) -> None:
    before = serving.version
    edit_threshold(policy_dir, 500)

    version = serving.reload_policies()

    assert version == serving.version == loader.load(policy_dir).version != before
    assert decide(serving, {"kind": "Pod"})["action"] == "admit"


def test_reload_keeps_the_data_documents(serving: embedded.EmbeddedEngine) -> None:
    serving.reload_policies()

    assert serving.ready
    assert decide(serving, {"kind": "Pod"})["g_per_kwh"] == 412.0


@pytest.mark.parametrize(("rego", "line", "kind"), [
    pytest.param("decision := {\n\t\"action\": \n}\n", 5, "rego_parse_error", id="parse-error"),
    pytest.param("decision := {\"action\": x} if {\n\tx > 1\n}\n", 4, "rego_unsafe_var_error",
                 id="unsafe-variable"),
    pytest.param("decision := {\"action\": x} if {\n\tx := 1 + \"one\"\n}\n", 4, "rego_type_error",
                 id="type-error"),
    pytest.param("decision := {\"action\": verdikt(1)}\n", 3, "rego_type_error",
                 id="undefined-function"),
    pytest.param("decision := a\n\na := decision\n", 3, "rego_recursion_error", id="recursion"),
])
def test_a_bad_edit_is_rejected_with_file_and_line_and_the_old_version_answers(
        serving: embedded.EmbeddedEngine, policy_dir: Path, rego: str, line: int,
        kind: str) -> None:
    version = serving.version
    break_decision(policy_dir, rego)

    with pytest.raises(errors.PolicyCompileError) as raised:
        serving.reload_policies()

    located = [(p.file, p.line) for p in raised.value.problems if kind in p.message]
    assert (DECISION_FILE, line) in located
    assert f"{DECISION_FILE}:{line}: {kind}" in str(raised.value)
    assert serving.version == version
    assert decide(serving, {"kind": "Pod"})["action"] == "defer"


def test_a_rejected_edit_is_counted_and_leaks_no_engine(
        serving: embedded.EmbeddedEngine, policy_dir: Path) -> None:
    compile_errors = metric("carbongate_policy_compile_errors_total")
    failed = metric("carbongate_policy_reloads_total", result="error")
    break_decision(policy_dir, "decision := y\n")

    with pytest.raises(errors.PolicyCompileError):
        serving.reload_policies()

    assert metric("carbongate_policy_compile_errors_total") == compile_errors + 1
    assert metric("carbongate_policy_reloads_total", result="error") == failed + 1
    assert serving.open_engines == 2


def test_invalid_config_json_is_rejected_like_a_compile_error(
        serving: embedded.EmbeddedEngine, policy_dir: Path) -> None:
    write(policy_dir / "carbongate/config/data.json", '{"home_region": "GB",,}')

    with pytest.raises(errors.PolicyCompileError, match="carbongate/config/data.json:1"):
        serving.reload_policies()

    assert decide(serving, {"kind": "Pod"})["action"] == "defer"


def test_successful_reloads_are_counted(serving: embedded.EmbeddedEngine) -> None:
    accepted = metric("carbongate_policy_reloads_total", result="ok")

    serving.reload_policies()

    assert metric("carbongate_policy_reloads_total", result="ok") == accepted + 1


def test_a_directory_that_does_not_compile_fails_construction(policy_dir: Path) -> None:
    break_decision(policy_dir, "decision := y\n")

    with pytest.raises(errors.PolicyCompileError, match="var y is unsafe"):
        embedded.EmbeddedEngine(policy_dir=policy_dir)


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_the_watcher_picks_up_an_edit(serving: embedded.EmbeddedEngine, policy_dir: Path) -> None:
    serving.start_watching(0.05)
    edit_threshold(policy_dir, 500)

    assert wait_for(lambda: decide(serving, {"kind": "Pod"})["action"] == "admit")
    assert serving.version == loader.load(policy_dir).version


def test_the_watcher_keeps_answering_through_a_bad_edit_and_takes_the_fix(
        serving: embedded.EmbeddedEngine, policy_dir: Path) -> None:
    serving.start_watching(0.05)
    compile_errors = metric("carbongate_policy_compile_errors_total")
    break_decision(policy_dir, "decision := y\n")

    assert wait_for(lambda: metric("carbongate_policy_compile_errors_total") > compile_errors)
    time.sleep(0.3)  # several more ticks: the same broken version is not retried
    assert metric("carbongate_policy_compile_errors_total") == compile_errors + 1
    assert decide(serving, {"kind": "Pod"})["action"] == "defer"

    break_decision(policy_dir, 'decision := {"action": "admit", "fixed": true}\n')
    assert wait_for(lambda: decide(serving, {"kind": "Pod"}).get("fixed") is True)


def test_one_watcher_check_reloads_only_when_the_fingerprint_moved(policy_dir: Path) -> None:
    reloads: list[str] = []

    def reload() -> str:
        reloads.append("r")
        return "v"

    polling = watcher.PolicyWatcher(directory=policy_dir, reload=reload, interval_s=60,
                                    loaded=loader.fingerprint(policy_dir))

    assert polling.check() is False
    edit_threshold(policy_dir, 10)
    assert polling.check() is True
    assert polling.check() is False
    assert reloads == ["r"]


def test_a_failure_that_is_not_the_policy_is_retried_on_the_next_tick(policy_dir: Path) -> None:
    attempts: list[int] = []

    def unreachable() -> str:
        attempts.append(1)
        raise errors.EngineUnavailableError("OPA is down")

    polling = watcher.PolicyWatcher(directory=policy_dir, reload=unreachable, interval_s=60)

    assert polling.check() and polling.check()
    assert len(attempts) == 2


def test_the_watcher_survives_the_directory_disappearing(policy_dir: Path, tmp_path: Path) -> None:
    polling = watcher.PolicyWatcher(directory=tmp_path / "absent", reload=lambda: "v",
                                    interval_s=60)

    assert polling.check() is False
