"""Building the configured engine at start-up: the right kind, or a clear failure."""

from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path

import pytest

from carbongate import settings
from policy_engine import embedded, errors, factory, opa_server
from tests.policy_engine.conftest import TOKEN, decide, grid
from tests.support import opa_rest_double


def engine_settings(policy_dir: Path, **fields: object) -> settings.EngineSettings:
    """Through settings.load, as the processes do (overrides = command-line flags)."""
    return settings.load(environ={}, overrides={
        "engine": {"policy_dir": str(policy_dir), **fields}}).engine


def test_embedded_is_built_with_the_configured_pool(policy_dir: Path) -> None:
    built = factory.build(engine_settings(policy_dir, embedded_pool_size=3))

    assert isinstance(built, embedded.EmbeddedEngine)
    assert built.open_engines == 3
    built.close()


def test_embedded_with_broken_policies_fails_start_up_naming_the_file(policy_dir: Path) -> None:
    (policy_dir / "carbongate/release/decision.rego").write_text("package carbongate.release\n"
                                                                 "decision := {\n")

    with pytest.raises(errors.PolicyCompileError, match="carbongate/release/decision.rego:"):
        factory.build(engine_settings(policy_dir))


def test_watch_starts_the_watcher(policy_dir: Path) -> None:
    built = factory.build(engine_settings(policy_dir, reload_interval_s=0.05), watch=True)
    built.put_data("grid", grid(GB=412.0))
    (policy_dir / "carbongate/config/data.json").write_text('{"home_region": "GB", '
                                                            '"threshold_g_per_kwh": 900}')

    deadline = time.monotonic() + 5
    while decide(built, {"kind": "Pod"})["action"] != "admit":
        assert time.monotonic() < deadline, "the watcher did not reload"
        time.sleep(0.02)
    built.close()


def test_an_unknown_kind_fails_with_the_choices(policy_dir: Path) -> None:
    bogus = dataclasses.replace(engine_settings(policy_dir), kind="wasm")  # type: ignore[arg-type]

    with pytest.raises(errors.EngineConfigError, match="'wasm' is unknown: use 'embedded' or 'opa'"):
        factory.build(bogus)


def test_opa_kind_pushes_policies_and_reads_the_token_from_the_named_variable(
        opa: opa_rest_double.OpaRestDouble, policy_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_OPA_TOKEN", TOKEN)

    built = factory.build(engine_settings(policy_dir, kind="opa", opa_url=opa.url,
                                          opa_token_env="TEST_OPA_TOKEN"))

    assert isinstance(built, opa_server.OpaServerEngine)
    assert built.version
    assert len(opa.policy_ids()) == 2
    assert opa.seen[-1].authorization == f"Bearer {TOKEN}"
    built.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_opa_fails_start_up_after_the_wait_not_forever(policy_dir: Path) -> None:
    unreachable = engine_settings(policy_dir, kind="opa",
                                  opa_url=f"http://127.0.0.1:{free_port()}",
                                  opa_startup_wait_s=0.3)
    started = time.monotonic()

    with pytest.raises(errors.EngineUnavailableError, match="not reachable .* engine.opa_url"):
        factory.build(unreachable)

    assert time.monotonic() - started < 3


def test_a_malformed_opa_url_fails_start_up(policy_dir: Path) -> None:
    with pytest.raises(errors.EngineConfigError, match="must look like"):
        factory.build(engine_settings(policy_dir, kind="opa", opa_url="opa:8181"))
