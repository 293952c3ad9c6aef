"""``carbongate simulate`` answers on every layout of grid trace the project's data holds.

One real cut of each directory of ``shared/data/grid`` (tests/fixtures/simulate/SOURCES.md
says where each comes from; the tests never read the shared collection itself): the
Electricity Maps exports (sustain-cluster and Sukprasert et al.), the 123-zone wide file,
"Let's wait awhile" (15-minute, and 30/15-minute mixed steps), EIA-930 with its empty
``avg_CI`` rows, and WattTime's 5-minute MOER. Each reads into the regions the data names,
and a small generated workload replays through all five policies with no deadline missed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbongate import cli
from simulate import grid
from tests.simulate.conftest import CAISO, FIXTURES, WATTTIME_ACTUAL

NO = FIXTURES / "NO_2023-06-01_10d.csv"
ZONES_123 = FIXTURES / "ci_lca_2022_hourly_123zones_2022-01-01_4d.csv"
GER = FIXTURES / "ger_ci_2020-03-01_10d.csv"
GB_MIXED_STEPS = FIXTURES / "gb_ci_2020-10-27_8d.csv"
PJM_EIA = FIXTURES / "PJM_NG_avgCI_2022_2022-03-09_10d.csv"

# fixture, the regions it reads into, the step of the region replayed, the workload
LAYOUTS = [
    pytest.param(CAISO, {"US-CAL-CISO"}, 3600, "mixed,jobs=12", id="electricitymaps-sustaincluster"),
    pytest.param(NO, {"NO"}, 3600, "mixed,jobs=12", id="electricitymaps-sukprasert"),
    pytest.param(ZONES_123, None, 3600, "mixed,jobs=12,regions=PL/DE/FR", id="electricitymaps-123zones"),
    pytest.param(GER, {"GER"}, 900, "mixed,jobs=12", id="letswaitawhile-15min"),
    pytest.param(GB_MIXED_STEPS, {"GB"}, 900, "batch-1h,jobs=12", id="letswaitawhile-mixed-steps"),
    pytest.param(PJM_EIA, {"PJM"}, 3600, "mixed,jobs=12", id="eia930"),
    pytest.param(WATTTIME_ACTUAL, {"CAISO_NORTH"}, 300, "batch-1h,jobs=12,max_delay=0/0/12", id="watttime-moer"),
]


@pytest.mark.parametrize(("path", "regions", "step_s", "spec"), LAYOUTS)
def test_every_layout_of_the_shared_data_replays(capsys: pytest.CaptureFixture[str], path: Path,
                                                 regions: set[str] | None, step_s: int, spec: str) -> None:
    traces = grid.load([path])
    if regions is not None:
        assert set(traces) == regions
    replayed = spec.partition("regions=")[2].split("/")[0] or next(iter(traces))
    assert traces[replayed].series.step_s == step_s
    code = cli.main(["simulate", "--workers", "1", "--grid", str(path), "--generate", spec, "--seed", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    assert document["jobs"] == 12 and document["deadline_misses"] == 0
    policies = document["policies"]
    oracle = policies["oracle"]["emissions_g"]
    for name, figures in policies.items():
        assert figures["deadline_misses"] == 0, name
        assert figures["emissions_g"] >= oracle * (1 - 1e-9), name


def test_the_123_zone_file_gives_every_zone_a_region() -> None:
    traces = grid.load([ZONES_123])
    assert len(traces) == 123
    assert {"FR", "PL", "SE-SE3", "US-MIDW-MISO", "GB", "DE"} <= set(traces)
    assert "HOUR_INDEX" not in traces and "DATETIME_UTC_ASSUMED" not in traces
    fr = traces["FR"].series
    assert fr.points[0].start == datetime(2022, 1, 1, tzinfo=UTC) and len(fr.points) == 96


def test_eia930_empty_intensity_rows_hold_the_last_reading() -> None:
    pjm = grid.load([PJM_EIA])["PJM"].series
    # 2022-03-13 07:00 .. 2022-03-14 04:00 UTC have no avg_CI: 22 hours fewer points, the
    # reading of 06:00 holds over the gap (the snapshot contract's hold-last-value).
    assert len(pjm.points) == 240 - 22
    gap = datetime(2022, 3, 13, 6, tzinfo=UTC)
    assert pjm.value_at(gap + timedelta(hours=10)) == pjm.value_at(gap)
    assert pjm.value_at(gap + timedelta(hours=23)) != pjm.value_at(gap)


def test_letswaitawhile_mixed_steps_keep_every_reading() -> None:
    gb = grid.load([GB_MIXED_STEPS])["GB"].series
    rows = GB_MIXED_STEPS.read_text().splitlines()[1:]
    assert len(gb.points) == len(rows)
    quarter = datetime(2020, 10, 31, 0, 15, tzinfo=UTC)  # from here on the file is 15-minute
    assert any(p.start == quarter for p in gb.points)
