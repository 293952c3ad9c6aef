"""``carbongate grid show``, ``grid plot`` and ``feed --once`` / ``python -m carbon_feed``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from carbon_feed import traces
from carbongate import cli
from planner import snapshot as contract
from tests.carbon_feed.helpers import EXAMPLES

NOW = "2026-11-22T12:07:00Z"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def snapshot_file(tmp_path: Path) -> Path:
    """A published snapshot with one region stale and served from the last-known-good cache."""
    document = traces.snapshot_from_traces(traces.demo_files(EXAMPLES), now=contract.parse_time(NOW),
                                           horizon_h=48, durations_min=(60,), grace_s=900)
    document["regions"]["NO"] |= {"stale": True, "source": "last-known-good:trace",
                                  "observed_at": "2026-11-22T09:00:00Z"}
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_grid_show_prints_one_row_per_region_from_the_snapshot(
    snapshot_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["grid", "show", "--snapshot", str(snapshot_file), "--now", NOW]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["region", "g/kWh", "signal", "source", "age", "next", "best", "window"]
    gb = next(line for line in lines if line.startswith("GB"))
    assert gb.split()[:6] == ["GB", "193", "average", "(lifecycle)", "trace", "7m"]
    assert "Tue 24 Nov 03:00-04:00  83 g/kWh" in gb
    no = next(line for line in lines if line.startswith("NO"))
    assert "last-known-good:trace" in no and "3h07m STALE" in no


def test_grid_show_can_build_the_grid_from_traces(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["grid", "show", "--grid", str(EXAMPLES / "DE_2023_hourly.csv"), "--now", NOW,
                     "--duration", "90"])

    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[1].startswith("DE ")
    assert "windows: 90 min" in out


def test_grid_show_without_a_snapshot_explains_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["grid", "show", "--snapshot", str(tmp_path / "none.json")]) == 2
    assert "cannot read grid snapshot" in capsys.readouterr().err


def test_grid_plot_writes_a_png(snapshot_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grid.png"

    assert cli.main(["grid", "plot", "--region", "GB", "--snapshot", str(snapshot_file), "--now", NOW,
                     "--out", str(out)]) == 0

    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 20_000
    assert f"wrote {out.resolve()}" in capsys.readouterr().out


def test_grid_plot_of_an_unknown_region_names_the_known_ones(
    snapshot_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["grid", "plot", "--region", "FR", "--snapshot", str(snapshot_file),
                     "--out", str(tmp_path / "x.png")]) == 2
    assert "no region 'FR' in the grid (have: GB, DE, NO)" in capsys.readouterr().err


def test_grid_plot_refuses_an_index_only_region(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = {"schema": 1, "generated_at": NOW, "regions": {"PSCO": {
        "region": "PSCO", "g_per_kwh": None, "signal": "index", "index_percent": 96.0, "source": "watttime",
        "observed_at": NOW, "stale": False, "forecast_step_s": 300, "forecast": [], "best_windows": {}}}}
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(document), encoding="utf-8")

    assert cli.main(["grid", "plot", "--region", "PSCO", "--snapshot", str(path), "--out",
                     str(tmp_path / "x.png")]) == 2
    assert "no g/kWh series to plot (signal index)" in capsys.readouterr().err
    assert cli.main(["grid", "show", "--snapshot", str(path), "--now", NOW]) == 0
    assert "96.0 %ile" in capsys.readouterr().out


def test_feed_once_publishes_from_a_providers_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    providers = tmp_path / "providers.yaml"
    providers.write_text(yaml.safe_dump({
        "providers": {"trace": {"files": [str(EXAMPLES / "NO_2023_hourly.csv")]}},
        "regions": {"NO": ["trace"]},
    }), encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    assert cli.main(["feed", "--once", "--providers", str(providers)]) == 0

    written = contract.load_snapshot(tmp_path / ".state" / "grid-snapshot.json")
    assert list(written["regions"]) == ["NO"]
    assert (tmp_path / ".state" / "feed" / "last-known-good.json").exists()


def test_feed_with_a_bad_providers_file_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    providers = tmp_path / "providers.yaml"
    providers.write_text("providers: [1, 2]\nregions: {}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    assert cli.main(["feed", "--once", "--providers", str(providers)]) == 2
    assert "'providers' must map names" in caplog.text


def test_python_dash_m_carbon_feed_is_the_feed_command(tmp_path: Path) -> None:
    providers = tmp_path / "providers.yaml"
    providers.write_text(yaml.safe_dump({
        "providers": {"trace": {"files": [str(EXAMPLES / "GB_2023_hourly.csv")]}},
        "regions": {"GB": ["trace"]},
    }), encoding="utf-8")

    result = subprocess.run([sys.executable, "-m", "carbon_feed", "--once", "--providers", str(providers)],
                            check=False, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})

    assert result.returncode == 0, result.stderr
    assert contract.load_snapshot(tmp_path / ".state" / "grid-snapshot.json")["regions"]["GB"]["source"] == "trace"


# Layouts `simulate --grid` reads that grid show/plot and review --grid used to refuse.
LAYOUTS = ROOT / "tests" / "fixtures" / "simulate"
WATTTIME = LAYOUTS / "watttime2023_caiso-north_actual_2023-06-08_2d.csv"   # time,Caiso_North
EIA930 = LAYOUTS / "PJM_NG_avgCI_2022_2022-03-09_10d.csv"                   # timestamp,WND,...,avg_CI
WIDE = LAYOUTS / "ci_lca_2022_hourly_123zones_2022-01-01_4d.csv"            # 123 zones, one column each


def test_grid_show_reads_every_layout_the_replay_reads(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["grid", "show", "--grid", str(WATTTIME), str(EIA930), str(WIDE),
                     "--now", "2023-06-08T12:00:00Z"])
    assert code == 0
    regions = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert regions[:2] == ["CAISO_NORTH", "PJM"] and "DE" in regions and len(regions) == 2 + 124


def test_grid_plot_without_out_names_the_file_it_wrote(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code = cli.main(["grid", "plot", "--grid", str(WATTTIME), "--region", "Caiso_North",
                     "--now", "2023-06-08T12:00:00Z"])
    assert code == 0
    assert (tmp_path / "grid.png").stat().st_size > 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'grid.png'} (choose the file with --out)"


def test_grid_show_takes_a_relative_now_and_refuses_a_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["grid", "show", "--grid", str(WATTTIME), "--now", "now-2h"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        cli.main(["grid", "show", "--grid", str(WATTTIME), "--now", "2026-11-22"])
    assert exit.value.code == 2
    assert "is a date, not an instant" in capsys.readouterr().err


def test_review_decides_on_a_watttime_trace(capsys: pytest.CaptureFixture[str]) -> None:
    manifest = ROOT / "examples" / "nightly-train" / "nightly-train.yaml"
    assert cli.main(["review", str(manifest), "--grid", str(WATTTIME), "--now", "2023-06-08T12:00:00Z",
                     "--json"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["home_region"] == "CAISO_NORTH" and outcome["decision"]["action"]
