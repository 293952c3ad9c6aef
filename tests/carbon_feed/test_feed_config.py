"""The providers file: chains, credentials by reference only, mistakes caught at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbon_feed import config, errors, service


def test_a_chain_entry_is_a_name_or_a_provider_with_its_zone(tmp_path: Path) -> None:
    parsed = config.parse({
        "providers": {"electricitymaps": {"token": {"env": "EM_TOKEN"}}, "trace": {"files": ["x.csv"]}},
        "regions": {"GB": ["ukci", {"provider": "electricitymaps", "zone": "GB"}, "trace"], "DE": "trace"},
    }, base_dir=tmp_path)

    assert parsed.regions["GB"] == (config.ChainEntry("ukci", "GB"), config.ChainEntry("electricitymaps", "GB"),
                                    config.ChainEntry("trace", "GB"))
    assert parsed.regions["DE"] == (config.ChainEntry("trace", "DE"),)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "must be a mapping"),
        ({"providers": {}}, "'regions' must name at least one region"),
        ({"regions": {"GB": []}}, "needs a list of providers"),
        ({"regions": {"GB": [{"zone": "GB"}]}}, "each entry is a name or"),
        ({"regions": {"GB": ["watttime"]}}, "uses provider 'watttime', which 'providers' does not define"),
    ],
)
def test_a_providers_file_that_does_not_fit_is_refused_with_the_reason(
    tmp_path: Path, document: object, message: str
) -> None:
    with pytest.raises(errors.ConfigError, match=message):
        config.parse(document, base_dir=tmp_path)


def test_an_unreadable_providers_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("regions: [unclosed", encoding="utf-8")
    with pytest.raises(errors.ConfigError, match="cannot read providers file"):
        config.load(tmp_path / "bad.yaml")
    with pytest.raises(errors.ConfigError, match="cannot read providers file"):
        config.load(tmp_path / "absent.yaml")


def test_a_credential_may_come_from_a_mounted_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-a-secret-volume\n", encoding="utf-8")

    secret = config.resolve_secret({"file": "token"}, where="test", base_dir=tmp_path)

    assert secret.value == "from-a-secret-volume"
    assert "from-a-secret-volume" not in repr(secret) + str(secret) + repr(config.ChainEntry("a", "b"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"file": "absent"}, "cannot read credential file"),
        ({"file": "empty"}, "is empty"),
        ({"env": "UNSET_VARIABLE"}, "UNSET_VARIABLE is not set"),
        ("literal-password", "never as a value"),
        ({"env": "A", "file": "B"}, "never as a value"),
    ],
)
def test_a_credential_that_cannot_be_found_stops_the_start(tmp_path: Path, spec: object, message: str) -> None:
    (tmp_path / "empty").write_text("", encoding="utf-8")
    with pytest.raises(errors.ConfigError, match=message):
        config.resolve_secret(spec, where="test", environ={}, base_dir=tmp_path)


def test_an_unknown_provider_type_names_the_known_ones(tmp_path: Path, context: config.BuildContext) -> None:
    parsed = config.parse({"providers": {"co2signal": {}}, "regions": {"DE": ["co2signal"]}}, base_dir=tmp_path)

    with pytest.raises(errors.ConfigError, match="unknown type 'co2signal'; known: electricitymaps, trace"):
        config.build_sources(parsed, factories=service.FACTORIES, context=context)


def test_two_instances_of_one_provider_type_can_serve_different_regions(
    tmp_path: Path, context: config.BuildContext
) -> None:
    parsed = config.parse({
        "providers": {"em-direct": {"type": "electricitymaps", "token": {"env": "EM_TOKEN"},
                                    "emission_factor": "direct"},
                      "em": {"type": "electricitymaps", "token": {"env": "EM_TOKEN"}}},
        "regions": {"DE": ["em-direct"], "FR": ["em"]},
    }, base_dir=tmp_path)

    built = config.build_sources(parsed, factories=service.FACTORIES, context=context)

    assert {name: set(source.regions()) for name, source in built.items()} == {"em-direct": {"DE"}, "em": {"FR"}}
