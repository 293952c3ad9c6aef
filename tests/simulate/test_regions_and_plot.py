"""Replays that explain themselves: regions the platform config lacks, and a plot that states the result."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from matplotlib.lines import Line2D

from carbongate import cli
from simulate import plot, report, run
from simulate import workload as workload_mod
from tests.simulate.conftest import CAISO, EditConfig, options, write_trace

T0 = datetime(2023, 5, 1, tzinfo=UTC)
HEADER = ",".join(workload_mod.HEADER)


def two_regions(tmp_path: Path) -> tuple[list[Path], Path]:
    """GB dirty all day, FR (not in the shipped config) clean: a tier-3 job allowed in both."""
    traces = [write_trace(tmp_path / "gb.csv", "GB", T0, [400] * 72),
              write_trace(tmp_path / "fr.csv", "FR", T0, [40] * 72)]
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"{HEADER}\nj1,2023-05-01T00:10:00Z,3,ml,2,8,1,24,GB;FR,0\n", encoding="utf-8")
    return traces, jobs


def test_a_region_missing_from_the_config_is_added_for_the_replay_and_carbongate_may_shift_there(
        tmp_path: Path) -> None:
    traces, jobs = two_regions(tmp_path)
    result = run.simulate(options(traces, workload=jobs))
    assert result.added_regions == ("FR",)
    (outcome,) = result.outcomes
    assert outcome.region == "FR"  # without FR in the config carbongate could never go where the oracle goes
    assert result.summaries["carbongate"].emissions_g == pytest.approx(result.summaries["oracle"].emissions_g)
    assert result.options.policy_dir == options(traces).policy_dir  # the caller's options, not the copy's


def test_the_table_and_the_json_say_which_regions_were_added(tmp_path: Path) -> None:
    traces, jobs = two_regions(tmp_path)
    result = run.simulate(options(traces, workload=jobs))
    text = report.as_text(result)
    assert "note: the workload names FR, which the platform config" in text
    assert "topology.kubernetes.io/region=<zone>" in text
    assert report.as_json(result)["added_regions"] == ["FR"]


def test_regions_the_config_lists_add_nothing(tmp_path: Path, edited_policies: EditConfig) -> None:
    traces, jobs = two_regions(tmp_path)
    policy_dir = edited_policies(lambda c: c["regions"].update(
        FR={"node_labels": {"topology.kubernetes.io/region": "francecentral"}, "latency_ms": 10}))
    result = run.simulate(options(traces, workload=jobs, policy_dir=policy_dir))
    assert result.added_regions == ()
    assert "added_regions" not in report.as_json(result)
    assert "note:" not in report.as_text(result)
    assert result.outcomes[0].region == "FR"


def test_the_added_config_is_what_the_policies_see_and_the_original_is_untouched(
        tmp_path: Path, edited_policies: EditConfig) -> None:
    policy_dir = edited_policies(lambda c: None)
    before = (policy_dir / "carbongate" / "config" / "data.json").read_text(encoding="utf-8")
    declared = run._policies(policy_dir)
    with run.config_with_regions(options([], policy_dir=policy_dir), declared, ["FR", "PL"]) as replayed:
        copied = json.loads((replayed.policy_dir / "carbongate" / "config" / "data.json").read_text())
        assert copied["regions"]["PL"] == {"node_labels": {"topology.kubernetes.io/region": "PL"}, "latency_ms": 0}
        assert set(copied["regions"]) >= {"GB", "DE", "NO", "FR", "PL"}
        scratch = replayed.policy_dir
    assert not scratch.exists()
    assert (policy_dir / "carbongate" / "config" / "data.json").read_text(encoding="utf-8") == before


def test_the_command_prints_the_note(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    traces, jobs = two_regions(tmp_path)
    code = cli.main(["simulate", "--workers", "1", "--grid", *map(str, traces), "--workload", str(jobs)])
    out = capsys.readouterr().out
    assert code == 0 and "note: the workload names FR" in out


# -- the plot -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def caiso() -> run.Result:
    return run.simulate(options([CAISO], generate="batch-1h,jobs=30", seed=2))


def test_the_title_states_savings_and_share_of_the_oracle(caiso: run.Result) -> None:
    figure = plot.figure(caiso)
    title = figure.get_suptitle()
    mine = caiso.summaries["carbongate"]
    assert f"carbongate saves {mine.savings_pct:.1f} %" in title
    assert mine.oracle_share is not None and f"{100 * mine.oracle_share:.0f} % of the oracle's" in title
    assert f"{caiso.summaries['oracle'].savings_pct:.1f} %" in title


def test_a_given_title_keeps_the_result(caiso: run.Result) -> None:
    title = plot.figure(caiso, title="CAISO, March").get_suptitle()
    assert title.startswith("carbongate saves") and title.endswith("CAISO, March")


def test_emissions_per_policy_are_bars_in_kg(caiso: run.Result) -> None:
    bars = plot.figure(caiso).axes[3]
    widths = [patch.get_width() for patch in bars.patches]
    assert widths == pytest.approx([caiso.summaries[n].emissions_g / 1000 for n in run.POLICIES])
    assert [t.get_text() for t in bars.get_yticklabels()] == list(run.POLICIES)


def test_the_zoomed_week_is_labelled_with_its_dates(caiso: run.Result) -> None:
    first, last = plot.busiest(caiso.table.submit_s, days=plot.DEFAULT_DAYS)
    top, lanes = plot.figure(caiso).axes[:2]
    label = plot.stretch_label(first, last)
    assert label in top.get_title(loc="left") and label in lanes.get_title(loc="left")
    assert plot.stretch_label(datetime(2023, 3, 6, tzinfo=UTC).timestamp(),
                              datetime(2023, 3, 13, tzinfo=UTC).timestamp()) == "6–12 Mar 2023"
    assert plot.stretch_label(datetime(2023, 3, 29, tzinfo=UTC).timestamp(),
                              datetime(2023, 4, 5, tzinfo=UTC).timestamp()) == "29 Mar–4 Apr 2023"


def test_no_two_policy_lines_share_a_style(caiso: run.Result) -> None:
    hours = plot.figure(caiso).axes[2]
    lines = [line for line in hours.get_lines() if isinstance(line, Line2D)]
    looks = {(line.get_linestyle(), line.get_marker(), line.get_color()) for line in lines}
    assert len(lines) == len(run.POLICIES) and len(looks) == len(lines)
    sizes = [line.get_markersize() for line in lines]
    assert sizes == sorted(sizes, reverse=True)  # drawn largest first: a line on another still shows
    assert all(line.get_markerfacecolor() == "none" for line in lines)


def test_the_second_axis_starts_at_zero_and_holds_every_mean(caiso: run.Result) -> None:
    figure = plot.figure(caiso)
    twin = figure.axes[4]
    low, high = twin.get_ylim()
    values = np.concatenate([line.get_ydata() for line in twin.get_lines()])
    assert low == 0 and high >= values.max()
    figure.canvas.draw()
    right = twin.yaxis.label.get_window_extent().x1
    assert right <= figure.bbox.width  # its label is inside the picture, not cut


def test_the_plot_file_is_written(caiso: run.Result, tmp_path: Path) -> None:
    picture = tmp_path / "replay.png"
    plot.write(caiso, picture)
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_job_with_one_region_needs_nothing_added(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "fr.csv", "FR", T0, [40] * 72)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"{HEADER}\nj1,2023-05-01T00:10:00Z,3,ml,2,8,1,24,FR,0\n", encoding="utf-8")
    result = run.simulate(options([trace], workload=jobs))
    assert result.added_regions == () and "note:" not in report.as_text(result)
