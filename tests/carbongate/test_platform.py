"""The platform config and the rules derived from it, written once (carbongate/platform.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from carbongate import platform
from carbongate import settings as settings_mod
from tests.webhook import builders
from webhook import admission, reviews

SHIPPED = platform.load(settings_mod.DEFAULT_POLICY_DIR)


def _settings(**grid: object) -> settings_mod.Settings:
    return settings_mod.load(environ={}, overrides={"grid": grid} if grid else None)


def test_the_shipped_config_names_home_region_duration_and_exempt_namespaces() -> None:
    assert SHIPPED.configured_home_region == "GB"
    assert SHIPPED.default_duration_s(_settings()) == 3600
    assert SHIPPED.exempt_namespaces == frozenset({"kube-system", "kube-public", "kube-node-lease"})
    assert SHIPPED.network_kwh_per_gb == pytest.approx(0.06)


@pytest.mark.parametrize(("setting", "document", "regions", "home"), [
    ("NO", {"home_region": "GB"}, ["DE"], "NO"),   # the settings first (the deployment knows where it runs)
    ("", {"home_region": "GB"}, ["DE"], "GB"),     # then the platform config
    ("", {}, ["DE", "GB"], "DE"),                  # then the first region with grid data
    ("", {}, [], ""),                              # nothing at all: no home region
])
def test_one_rule_for_the_home_region(setting: str, document: dict[str, object], regions: list[str],
                                      home: str) -> None:
    assert platform.PlatformConfig.of(document).home_region(_settings(home_region=setting), regions) == home


def test_for_a_grid_given_by_hand_the_home_region_must_be_one_of_its_regions() -> None:
    config = platform.PlatformConfig.of({"home_region": "GB"})
    assert config.home_region(_settings(), ["CAISO_NORTH"], within=True) == "CAISO_NORTH"
    assert config.home_region(_settings(), ["DE", "GB"], within=True) == "GB"
    assert config.home_region(_settings(home_region="DE"), ["DE", "GB"], within=True) == "DE"
    assert config.home_region(_settings(), ["CAISO_NORTH"]) == "GB"  # a running component keeps its home


@pytest.mark.parametrize(("document", "expected"), [
    ({"default_duration_s": 5400}, 5400),
    ({"default_duration_s": 0}, 7200),      # not a duration: the setting
    ({"default_duration_s": True}, 7200),   # a bool is no number here
    ({}, 7200),
])
def test_the_default_duration_is_the_configs_then_the_settings(document: dict[str, object],
                                                                expected: int) -> None:
    loaded = settings_mod.load(environ={}, overrides={"deferral": {"default_expected_duration_s": 7200}})
    assert platform.PlatformConfig.of(document).default_duration_s(loaded) == expected


def test_an_unreadable_config_is_an_error_to_load_and_empty_to_read(tmp_path: Path) -> None:
    with pytest.raises(platform.PlatformConfigError, match="cannot read the platform config"):
        platform.load(tmp_path)
    assert platform.read(tmp_path) == platform.PlatformConfig()
    (tmp_path / platform.CONFIG_FILE).parent.mkdir(parents=True)
    (tmp_path / platform.CONFIG_FILE).write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(platform.PlatformConfigError, match="JSON object"):
        platform.load(tmp_path)


def test_the_webhook_skips_the_namespaces_the_config_exempts_and_no_others(tmp_path: Path) -> None:
    """Editing exempt_namespaces in data.json changes what the webhook skips: there is no other list."""
    config = json.loads((settings_mod.DEFAULT_POLICY_DIR / platform.CONFIG_FILE).read_text(encoding="utf-8"))
    config["exempt_namespaces"] = ["infra"]
    asked: list[str] = []
    for namespace in ("infra", "kube-system"):
        def decide(document: object, namespace: str = namespace) -> None:
            asked.append(namespace)

        known = admission.knowledge(
            settings=_settings(), platform=platform.PlatformConfig.of(config),
            now=datetime(2026, 11, 22, 10, tzinfo=UTC), grid=None, namespace_labels={}, policy_version="v1")
        request = reviews.parse(builders.body(builders.review(builders.pod(), namespace=namespace)))
        admission.review(request, knowledge=known, decide=decide, energy_kwh=lambda obj, seconds: 0.0)
    assert asked == ["kube-system"]
