"""``carbongate simulate`` as a team runs it: demo data, real traces, JSON, table, plot, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carbongate import cli
from simulate import workload as workload_mod
from tests.simulate.conftest import CAISO, DEMO, WATTTIME_ACTUAL, WATTTIME_FORECAST

POLICY_KEYS = {"emissions_g", "savings_pct", "oracle_share", "mean_delay_h", "p95_delay_h", "deadline_misses"}


def simulate(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = cli.main(["simulate", "--workers", "1", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_on_the_bundled_demo_data_has_exactly_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = simulate(capsys, "--grid", *map(str, sorted(DEMO.glob("*.csv"))),
                            "--generate", "mixed,jobs=40,end=2023-02-01T00:00:00Z", "--seed", "3", "--json")
    assert code == 0
    document = json.loads(out)
    assert set(document) == {"jobs", "deadline_misses", "policies"}
    assert document["jobs"] == 40 and document["deadline_misses"] == 0
    assert list(document["policies"]) == ["run_now", "threshold_30min", "sdk_window", "carbongate", "oracle"]
    for name, figures in document["policies"].items():
        assert set(figures) == POLICY_KEYS, name
        assert isinstance(figures["deadline_misses"], int)
        assert all(isinstance(figures[k], float) for k in POLICY_KEYS - {"deadline_misses", "oracle_share"})
    policies = document["policies"]
    assert policies["run_now"]["savings_pct"] == 0.0 and policies["oracle"]["oracle_share"] == 1.0
    assert all(p["emissions_g"] >= policies["oracle"]["emissions_g"] - 1e-6 for p in policies.values())


def test_the_table_on_a_real_trace_names_every_policy(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = simulate(capsys, "--grid", str(CAISO), "--generate", "batch-1h,jobs=30", "--horizon-h", "24")
    assert code == 0
    assert "in US-CAL-CISO; forecast perfect, horizon 24 h" in out
    for name in ("run_now", "threshold_30min", "sdk_window", "carbongate", "oracle"):
        assert f"\n{name} " in out
    assert "carbongate decisions:" in out


def test_a_written_workload_replays_to_the_same_figures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.csv"
    code, generated, _ = simulate(capsys, "--grid", str(CAISO), "--generate", "mixed,jobs=25", "--seed", "8",
                                  "--forecast", "noisy:0.10", "--json", "--write-workload", str(jobs))
    assert code == 0 and jobs.read_text().startswith(",".join(workload_mod.HEADER) + "\n")
    code, replayed, _ = simulate(capsys, "--grid", str(CAISO), "--workload", str(jobs), "--seed", "8",
                                 "--forecast", "noisy:0.10", "--json")
    assert code == 0 and json.loads(replayed) == json.loads(generated)


def test_the_plot_is_a_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    picture = tmp_path / "replay.png"
    code, _, _ = simulate(capsys, "--grid", str(CAISO), "--generate", "batch-1h,jobs=20", "--plot", str(picture))
    assert code == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 20_000


def test_watttimes_recorded_forecasts_replay(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = simulate(capsys, "--grid", str(WATTTIME_ACTUAL), "--generate", "batch-1h,jobs=15",
                            "--forecast", f"recorded:{WATTTIME_FORECAST}", "--horizon-h", "24", "--json")
    assert code == 0
    policies = json.loads(out)["policies"]
    # A 65-minute forecast cannot see a window later today: the SDK and carbongate barely move.
    assert policies["sdk_window"]["mean_delay_h"] < 0.1
    assert policies["oracle"]["savings_pct"] > policies["carbongate"]["savings_pct"]


@pytest.mark.parametrize(("arguments", "message"), [
    (["--grid", "nowhere.csv", "--generate", "mixed"], "cannot read grid trace"),
    (["--grid", str(CAISO), "--generate", "mixed,colour=red"], "expected key=value"),
    (["--grid", str(CAISO), "--generate", "mixed,regions=GB"], "no trace for region(s) GB"),
    (["--grid", str(CAISO), "--generate", "mixed", "--forecast", "clairvoyant"], "use perfect, noisy"),
    (["--grid", str(CAISO), "--generate", "mixed", "--forecast", f"recorded:{WATTTIME_FORECAST}"], "CAISO_NORTH only"),
    (["--grid", str(CAISO), "--generate", "mixed", "--policy-dir", "nowhere"], "nowhere"),
])
def test_bad_input_exits_2_with_what_to_fix(capsys: pytest.CaptureFixture[str], arguments: list[str],
                                            message: str) -> None:
    code, out, err = simulate(capsys, *arguments)
    assert code == 2 and out == ""
    assert message in err and err.startswith("carbongate simulate: ")


def test_a_workload_with_the_wrong_header_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("id,when\n1,2023-03-02T00:00:00Z\n")
    code, _, err = simulate(capsys, "--grid", str(CAISO), "--workload", str(jobs))
    assert code == 2 and "header must be exactly" in err


def test_jobs_off_the_traces_are_skipped_and_said_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.csv"
    header = ",".join(workload_mod.HEADER)
    jobs.write_text(f"{header}\nin,2023-03-02T10:00:00Z,3,ml,2,8,1,24,US-CAL-CISO,0\n"
                    f"late,2023-03-21T10:00:00Z,3,ml,2,8,1,24,US-CAL-CISO,0\n")
    code, out, _ = simulate(capsys, "--grid", str(CAISO), "--workload", str(jobs))
    assert code == 0 and "(1 jobs skipped: their window runs off the traces)" in out
    jobs.write_text(f"{header}\nlate,2023-03-21T10:00:00Z,3,ml,2,8,1,24,US-CAL-CISO,0\n")
    code, _, err = simulate(capsys, "--grid", str(CAISO), "--workload", str(jobs))
    assert code == 2 and "none of the 1 jobs fits" in err
