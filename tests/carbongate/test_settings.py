"""The one settings object: defaults < TOML file < environment < command-line overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbongate import settings


def test_defaults_serve_make_run() -> None:
    loaded = settings.load(environ={})
    assert loaded.engine.kind == "embedded"
    assert loaded.webhook.bind == "127.0.0.1:8443"
    assert loaded.webhook.decision_deadline_ms == 250
    assert loaded.webhook.max_body_bytes == 3 * 1024 * 1024


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    config = tmp_path / "carbongate.toml"
    config.write_text('[webhook]\nbind = "0.0.0.0:9443"\nworkers = 4\n[grid]\nhome_region = "DE"\n')
    loaded = settings.load(
        environ={"CARBONGATE_CONFIG": str(config), "CARBONGATE_WEBHOOK_WORKERS": "6"},
        overrides={"grid": {"home_region": "NO"}},
    )
    assert loaded.webhook.bind == "0.0.0.0:9443"   # file
    assert loaded.webhook.workers == 6             # environment beats file
    assert loaded.grid.home_region == "NO"         # flags beat both


def test_environment_strings_become_typed_values() -> None:
    loaded = settings.load(environ={
        "CARBONGATE_GRID_WINDOW_DURATIONS_MIN": "30, 60,120",
        "CARBONGATE_WEBHOOK_CLIENT_CA_FILE": "/etc/ca.crt",
        "CARBONGATE_ENGINE_KIND": "opa",
        "CARBONGATE_FEED_TRACE_FILES": "a.csv,b.csv",
    })
    assert loaded.grid.window_durations_min == (30, 60, 120)
    assert loaded.webhook.client_ca_file == Path("/etc/ca.crt")
    assert loaded.engine.kind == "opa"
    assert loaded.feed.trace_files == (Path("a.csv"), Path("b.csv"))


def test_the_exempt_namespaces_setting_is_gone_with_a_pointer_to_the_platform_config() -> None:
    """One list of exempt namespaces: data.json's, which the policy reads too (carbongate/platform.py)."""
    with pytest.raises(settings.SettingsError, match="moved to the platform config"):
        settings.load(environ={}, overrides={"webhook": {"exempt_namespaces": ["kube-system", "infra"]}})
    with pytest.raises(settings.SettingsError, match="moved to the platform config"):
        settings.load(environ={"CARBONGATE_WEBHOOK_EXEMPT_NAMESPACES": "kube-system,infra"})


@pytest.mark.parametrize(("environ", "message"), [
    ({"CARBONGATE_ENGINE_KIND": "wasm"}, "engine.kind must be one of"),
    ({"CARBONGATE_WEBHOOK_WORKERS": "many"}, "webhook.workers: cannot use 'many'"),
])
def test_bad_values_are_refused_with_the_setting_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(settings.SettingsError, match=message):
        settings.load(environ=environ)


def test_unknown_keys_in_a_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[webhook]\nbnid = 1\n")
    with pytest.raises(settings.SettingsError, match="unknown setting"):
        settings.load(environ={}, config_file=config)


def test_an_unreadable_file_says_which(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[webhook\n")
    with pytest.raises(settings.SettingsError, match="broken.toml"):
        settings.load(environ={}, config_file=config)
