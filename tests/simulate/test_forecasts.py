"""Forecasts: perfect is the trace, noisy is seeded, persistence is yesterday, recorded is as issued."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from planner import series as series_mod
from simulate import forecasts, grid
from tests.simulate.conftest import CAISO, WATTTIME_ACTUAL, WATTTIME_FORECAST, instant

DAY = 86400


@pytest.fixture(scope="module")
def caiso() -> series_mod.Series:
    return grid.load([CAISO])["US-CAL-CISO"].series


def make(spec: str, truth: series_mod.Series, *, region: str = "US-CAL-CISO", horizon_h: int = 48,
         seed: int = 0) -> forecasts.Forecasts:
    return forecasts.Forecasts(forecasts.parse_spec(spec), truths={region: truth}, horizon_s=horizon_h * 3600,
                               seed=seed)


def at(text: str) -> int:
    return int(instant(text).timestamp())


def test_perfect_is_the_trace_up_to_the_horizon(caiso: series_mod.Series) -> None:
    issued = make("perfect", caiso, horizon_h=24).issue("US-CAL-CISO", at("2023-03-05T06:00:00+00:00"))
    assert issued is not None
    assert len(issued.points) == 24
    assert all(caiso.value_at(p.start) == p.g_per_kwh for p in issued.points)
    assert issued.points[0].start == instant("2023-03-05T06:00:00+00:00")


def test_noisy_keeps_the_reading_and_errs_by_the_stated_amount(caiso: series_mod.Series) -> None:
    noisy = make("noisy:0.10", caiso, seed=3)
    ratios = []
    for hour in range(0, 14 * 24, 7):
        issued = noisy.issue("US-CAL-CISO", at("2023-03-01T00:00:00+00:00") + hour * 3600)
        assert issued is not None
        assert issued.points[0].g_per_kwh == caiso.value_at(issued.points[0].start)
        ratios += [p.g_per_kwh / caiso.value_at(p.start) - 1 for p in issued.points[1:]]  # type: ignore[operator]
    assert 0.09 < float(np.std(ratios)) < 0.11
    assert abs(float(np.mean(ratios))) < 0.01


def test_noisy_forecasts_depend_on_the_seed_only(caiso: series_mod.Series) -> None:
    when = at("2023-03-07T12:00:00+00:00")
    first = make("noisy:0.2", caiso, seed=9)
    first.issue("US-CAL-CISO", when - 3600)  # another issue asked first changes nothing
    assert first.issue("US-CAL-CISO", when) == make("noisy:0.2", caiso, seed=9).issue("US-CAL-CISO", when)
    assert first.issue("US-CAL-CISO", when) != make("noisy:0.2", caiso, seed=10).issue("US-CAL-CISO", when)


def test_persistence_repeats_the_same_hour_of_the_days_before(caiso: series_mod.Series) -> None:
    when = instant("2023-03-10T05:00:00+00:00")
    issued = make("persistence", caiso).issue("US-CAL-CISO", int(when.timestamp()))
    assert issued is not None
    values = {p.start: p.g_per_kwh for p in issued.points}
    assert values[when] == caiso.value_at(when)
    assert values[when + timedelta(hours=5)] == caiso.value_at(when + timedelta(hours=5) - timedelta(days=1))
    assert values[when + timedelta(hours=24)] == caiso.value_at(when)
    assert values[when + timedelta(hours=30)] == caiso.value_at(when + timedelta(hours=30) - timedelta(days=2))


def test_persistence_knows_nothing_before_the_trace_begins(caiso: series_mod.Series) -> None:
    first_day = make("persistence", caiso).issue("US-CAL-CISO", at("2023-03-01T03:00:00+00:00"))
    assert first_day is not None
    assert len(first_day.points) == 1  # the reading; 04:00 yesterday is not in the trace
    second_day = make("persistence", caiso, horizon_h=48).issue("US-CAL-CISO", at("2023-03-02T03:00:00+00:00"))
    assert second_day is not None
    assert second_day.end == instant("2023-03-04T03:00:00+00:00")


def test_recorded_forecasts_are_the_latest_issue_as_published() -> None:
    truth = grid.load([WATTTIME_ACTUAL])["CAISO_NORTH"].series
    recorded = forecasts.Forecasts(forecasts.Spec("recorded", path=WATTTIME_FORECAST),
                                   truths={"CAISO_NORTH": truth}, horizon_s=24 * 3600, seed=0)
    when = instant("2023-06-08T10:00:00+00:00")
    issued = recorded.issue("CAISO_NORTH", int(when.timestamp()))
    assert issued is not None
    assert issued.step_s == 300
    assert issued.points[0].g_per_kwh == truth.value_at(when)
    assert [p.start - when for p in issued.points[1:]] == [timedelta(minutes=5 * k) for k in range(1, 14)]
    assert issued.points[1].g_per_kwh == pytest.approx(_recorded_value("2023-06-08 10:00:00", "2023-06-08 10:05:00"))


def test_a_recorded_file_without_the_region_is_refused() -> None:
    truth = grid.load([CAISO])["US-CAL-CISO"].series
    with pytest.raises(forecasts.ForecastError, match="CAISO_NORTH only"):
        forecasts.Forecasts(forecasts.Spec("recorded", path=WATTTIME_FORECAST),
                            truths={"US-CAL-CISO": truth}, horizon_s=3600, seed=0)


def test_nothing_is_forecast_outside_the_trace(caiso: series_mod.Series) -> None:
    assert make("perfect", caiso).issue("US-CAL-CISO", at("2023-04-01T00:00:00+00:00")) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("perfect", forecasts.Spec("perfect")),
    ("noisy:0.10", forecasts.Spec("noisy", error=0.1)),
    ("persistence", forecasts.Spec("persistence")),
])
def test_forecast_names_are_read(text: str, expected: forecasts.Spec) -> None:
    assert forecasts.parse_spec(text) == expected
    assert str(expected) == (text if text != "noisy:0.10" else "noisy:0.1")


@pytest.mark.parametrize("text", ["oracle", "noisy", "noisy:ten", "noisy:-0.1", "recorded:", "perfect:1"])
def test_a_bad_forecast_name_is_refused(text: str) -> None:
    with pytest.raises(forecasts.ForecastError):
        forecasts.parse_spec(text)


def _recorded_value(request: str, target: str) -> float:
    for line in WATTTIME_FORECAST.read_text().splitlines():
        issued, when, value = line.split(",")
        if issued == request and when == target:
            return float(value)
    raise AssertionError("row not in the fixture")
