"""Fixtures for the simulator: real traces, hand-made traces, an editable copy of the policies."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carbongate import settings as settings_mod
from simulate import forecasts, run

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "simulate"
DEMO = ROOT / "examples" / "grid"
CAISO = FIXTURES / "US-CAL-CISO_2023-03-01_21d.csv"
WATTTIME_ACTUAL = FIXTURES / "watttime2023_caiso-north_actual_2023-06-08_2d.csv"
WATTTIME_FORECAST = FIXTURES / "watttime2023_caiso-north_forecast_2023-06-08_2d.csv"
POLICIES = ROOT / "policies" / "rego"
CONFIG = Path("carbongate") / "config" / "data.json"

EditConfig = Callable[[Callable[[dict[str, Any]], None]], Path]


def write_trace(path: Path, region: str, start: datetime, values: Sequence[float], *, step_s: int = 3600) -> Path:
    """A ``time,region,g_per_kwh`` trace (the plain layout the feed reads)."""
    lines = ["time,region,g_per_kwh"]
    lines += [f"{(start + timedelta(seconds=i * step_s)).strftime('%Y-%m-%dT%H:%M:%SZ')},{region},{v}"
              for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def options(grid: Sequence[Path], *, generate: str | None = None, workload: Path | None = None,
            forecast: str = "perfect", horizon_h: int = 48, policy_dir: Path = POLICIES, seed: int = 0,
            workers: int = 1) -> run.Options:
    return run.Options(grid=tuple(grid), generate=generate, workload=workload,
                       forecast=forecasts.parse_spec(forecast), horizon_h=horizon_h, policy_dir=policy_dir,
                       seed=seed, workers=workers, settings=settings_mod.load(environ={}))


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
def edited_policies(tmp_path: Path) -> EditConfig:
    """A copy of the shipped policies whose platform config the test edits."""

    def edit(change: Callable[[dict[str, Any]], None]) -> Path:
        directory = tmp_path / "policies"
        if not directory.exists():
            shutil.copytree(POLICIES, directory)
        config = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
        change(config)
        (directory / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
        return directory

    return edit
