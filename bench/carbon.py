"""Carbon benchmark: how much carbongate saves on a year of six real grids, against the oracle and its peers.

For GB, DE, CAISO (US-CAL-CISO), PJM (US-MIDA-PJM), NO and ZA, on the whole of
2023 (Electricity Maps hourly, life-cycle), replays two workloads with
``carbongate simulate``'s machinery (:mod:`simulate.run`): one-hour tier-3 jobs
with 24 hours of slack (the setting of Sukprasert et al., EuroSys 2024) and
the mixed workload; each with a perfect and a noisy (10 %) forecast. Every
replay puts five policies side by side on the same jobs: run-now, the seed
guides' 30-minute threshold rule, the Carbon Aware SDK's single-shot window,
carbongate (the shipped Rego through the production admission and release
paths) and the oracle.

It also replays interruptible long jobs (8 to 24 h of work, 48 h of slack,
tier 3, ``interruptible``) per region: run-now, carbongate by start time only,
the start-time oracle, carbongate pausing and resuming them, and the oracle
of the cleanest hours (``--only-interruptible`` runs just that row and
rewrites its section of ``docs/savings.md``).

Then it times one full year of one region with 10,000 mixed jobs (the
performance goal), replays the mixed workload once more with a proposed
platform config (``--what-if``, a copy of the policies with an edited
``config/data.json``, so the shipped defaults and their cost are both
shown), draws the plot, and writes ``docs/savings.md`` and ``docs/savings.png``.

The grid data is read from ``--data-dir``, by default ``../shared/data/grid``
next to the repository: this is a benchmark's input, named explicitly, never
something carbongate reads at run time.

    .venv/bin/python bench/carbon.py [--data-dir DIR] [--jobs 2000] [--perf-jobs 10000]
                                     [--workers 2] [--seed 1] [--no-what-if] [--out docs/savings.md]
                                     [--interruptible-jobs 8] [--only-interruptible]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from carbongate import clock  # noqa: E402
from carbongate import settings as settings_mod  # noqa: E402
from simulate import forecasts, plot, report, run  # noqa: E402
from simulate import workload as workload_mod  # noqa: E402

DEFAULT_DATA_DIR: Final = ROOT.parent / "shared" / "data" / "grid"
SUSTAIN = "electricitymaps-hourly-sustaincluster"
SUKPRASERT = "electricitymaps-hourly-sukprasert"
# region label -> (zone id, file under the data directory)
REGIONS: Final[Mapping[str, tuple[str, str]]] = {
    "GB": ("GB", f"{SUSTAIN}/GB_2023_hourly.csv"),
    "DE": ("DE", f"{SUSTAIN}/DE-LU_2023_hourly.csv"),
    "CAISO": ("US-CAL-CISO", f"{SUSTAIN}/US-CAL-CISO_2023_hourly.csv"),
    "PJM": ("US-MIDA-PJM", f"{SUSTAIN}/US-MIDA-PJM_2023_hourly.csv"),
    "NO": ("NO", f"{SUKPRASERT}/NO_2023_hourly.csv"),
    "ZA": ("ZA", f"{SUSTAIN}/ZA_2023_hourly.csv"),
}
WORKLOADS: Final[Mapping[str, str]] = {"1-hour jobs, 24 h slack": "batch-1h", "mixed": "mixed"}
FORECASTS: Final = ("perfect", "noisy:0.10")
GOALS: Final[Mapping[str, float]] = {"perfect": 0.95, "noisy:0.10": 0.85}
# Sukprasert et al., "On the Limitations of Carbon-Aware Temporal and Spatial Workload
# Shifting in the Cloud", EuroSys 2024: upper bound of temporal shifting for 1-hour jobs
# with 24 hours of slack (their figures, 2022 data, 123 regions for the mean).
PAPER: Final[Mapping[str, float]] = {"mean": 17.5, "CAISO": 33.0, "PJM": 5.5}
PERF_REGION: Final = "GB"
PERF_GOAL_S: Final = 60.0
PLOT_REGION: Final = "CAISO"
INTERRUPTIBLE_TITLE: Final = "## Interruptible long jobs"
PERFORMANCE_TITLE: Final = "## Replay time"


@dataclasses.dataclass(frozen=True)
class Proposal:
    """A platform config change the benchmark shows next to the shipped one."""

    title: str
    why: str
    change: Callable[[dict[str, Any]], None]


def _tier2_like_tier3(config: dict[str, Any]) -> None:
    config["tiers"]["2"]["threshold_g_per_kwh"] = 0
    config["tiers"]["2"]["min_saving_pct"] = config["tiers"]["3"]["min_saving_pct"]


PROPOSAL: Final = Proposal(
    title="tier 2 without a threshold, min_saving_pct as tier 3",
    why="tier 2 (staging, CI) keeps a 200 gCO2/kWh threshold and a 10 % minimum saving in the shipped "
        "config: its delays are short and a grid that is clean enough is worth not waiting for. Without "
        "them its jobs, too, wait for the cleanest window within their two hours",
    change=_tier2_like_tier3,
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One replay's figures."""

    region: str
    workload: str
    forecast: str
    summaries: Mapping[str, run.Summary]
    decisions: Mapping[str, int]
    releases: Mapping[str, int]
    release_decisions: int
    jobs: int
    elapsed_s: float


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    data_dir = args.data_dir.resolve()
    print(f"grid data from {data_dir} (--data-dir; default ../shared/data/grid next to the repository: "
          "a benchmark input, never read by carbongate at run time)", flush=True)
    files = {label: data_dir / path for label, (_, path) in REGIONS.items()}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        print(f"missing grid files: {', '.join(missing)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    if args.only_interruptible:
        section = _interruptible_section(_interruptible(files, args), args)
        args.out.write_text(_replace_section(args.out.read_text(encoding="utf-8"), section), encoding="utf-8")
        print(f"rewrote the interruptible section of {args.out} in {time.perf_counter() - started:.0f} s")
        return 0
    if args.only_performance:
        section = "\n".join(_performance_text(_performance(files[PERF_REGION], args), only=True)) + "\n\n"
        args.out.write_text(_replace_section(args.out.read_text(encoding="utf-8"), section, title=PERFORMANCE_TITLE),
                            encoding="utf-8")
        print(f"rewrote the replay-time section of {args.out}")
        return 0
    shipped = _replays(files, args, policy_dir=settings_mod.DEFAULT_POLICY_DIR)
    proposed: list[Row] = []
    if args.what_if:
        with tempfile.TemporaryDirectory() as scratch:
            proposed = _replays(files, args, policy_dir=_edited_policies(Path(scratch), PROPOSAL),
                                workloads={"mixed": "mixed"})
    perf = _performance(files[PERF_REGION], args)
    picture = args.out.with_suffix(".png")
    _plot(files[PLOT_REGION], args, picture)
    interrupted = _interruptible_section(_interruptible(files, args), args)
    args.out.write_text(_markdown(shipped, proposed, perf, args, picture, data_dir) + "\n" + interrupted,
                        encoding="utf-8")
    print(f"wrote {args.out} and {picture} in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="directory holding the grid traces (default: ../shared/data/grid)")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per replay (default 2000)")
    parser.add_argument("--perf-jobs", type=int, default=10_000, help="jobs of the timed full-year replay")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--what-if", action=argparse.BooleanOptionalAction, default=True,
                        help="also replay the mixed workload with the proposed config")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "savings.md")
    parser.add_argument("--interruptible-jobs", type=int, default=8,
                        help="interruptible long jobs per region (default 8)")
    parser.add_argument("--only-interruptible", action="store_true",
                        help="replay only the interruptible long jobs and rewrite their section of --out")
    parser.add_argument("--only-performance", action="store_true",
                        help="time only the full-year replay and rewrite its section of --out")
    return parser.parse_args(argv)


def _interruptible(files: Mapping[str, Path], args: argparse.Namespace) -> list[tuple[str, run.Result]]:
    """Each region's replay of interruptible long jobs (perfect forecast)."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for label, path in files.items():
            jobs = Path(scratch) / f"{label}.csv"
            workload_mod.write_csv(_long_jobs(args.interruptible_jobs, seed=args.seed, zone=REGIONS[label][0]), jobs)
            result = run.simulate(run.Options(
                grid=(path,), workload=jobs, forecast=forecasts.parse_spec("perfect"), horizon_h=48,
                policy_dir=settings_mod.DEFAULT_POLICY_DIR, seed=args.seed, workers=1,
                settings=settings_mod.load(environ={})))
            found = result.interrupted
            assert found is not None
            print(f"interruptible {label:<6} paused+resumed {found.savings_pct('interruptible'):6.2f} %, "
                  f"start time {found.savings_pct('start_time'):6.2f} %, "
                  f"oracle {found.savings_pct('slice_oracle'):6.2f} % "
                  f"in {result.elapsed_s:.0f} s", flush=True)
            rows.append((label, result))
    return rows


def _long_jobs(count: int, *, seed: int, zone: str) -> list[workload_mod.Job]:
    """Tier-3 interruptible jobs of 8 to 24 h with 48 h of slack, submitted over 2023."""
    rng = np.random.default_rng(seed)
    first = datetime(2023, 1, 2, tzinfo=UTC).timestamp()
    last = datetime(2023, 12, 25, tzinfo=UTC).timestamp()
    return sorted((workload_mod.Job(
        job_id=f"long-{i}", submit_time=datetime.fromtimestamp(float(rng.uniform(first, last)) // 60 * 60, UTC),
        tier="3", team="ml", cpu=8.0, memory_gb=32.0, duration_h=float(rng.integers(8, 25)), max_delay_h=48.0,
        regions=(zone,), data_gb=0.0, interruptible=True) for i in range(count)), key=lambda j: j.submit_time)


def _interruptible_section(rows: list[tuple[str, run.Result]], args: argparse.Namespace) -> str:
    lines = [
        INTERRUPTIBLE_TITLE, "",
        f"Written by `bench/carbon.py --only-interruptible` on {clock.utc_now().strftime('%Y-%m-%d %H:%M UTC')}: "
        f"{args.interruptible_jobs} tier-3 jobs per region, each needing 8 to 24 h of work with 48 h of slack and "
        "annotated `carbongate.io/interruptible: \"true\"`, submitted at random over 2023 (seed "
        f"{args.seed}), perfect forecast. **start_time** is carbongate choosing only when they start (what it does "
        "without the annotation); **interruptible** is carbongate pausing and resuming them through the shipped "
        "`data.carbongate.interrupt.decision` (tier 3: slices of at least 1 h, at most 4 pauses, 15 min of "
        "overhead charged per resume); **start_oracle** the least-emitting start; **slice_oracle** the cleanest "
        "set of hours under the same tier rules, knowing the true grid. *of oracle* is against the slice oracle.",
        "",
        "| region | start_time | start_oracle | interruptible | slice_oracle | interruptible, of oracle "
        "| pauses | misses |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, result in rows:
        found = result.interrupted
        assert found is not None
        share = found.oracle_share("interruptible")
        lines.append(
            f"| {label} | {found.savings_pct('start_time'):.2f} % | {found.savings_pct('start_oracle'):.2f} % | "
            f"{found.savings_pct('interruptible'):.2f} % | {found.savings_pct('slice_oracle'):.2f} % | "
            f"{_share(share)} | {found.pauses} | {found.deadline_misses} |")
    lines += ["", "Savings are against running each job at submission. Both carbongate ways wait at most the "
              "shipped tier-3 cap of 24 h (`tiers.3.max_delay_s`) while the oracles use the full 48 h, and a job "
              "that admission runs at once gets no `carbongate.io/deadline` from the shipped policies and is never "
              f"paused{_unpaused(rows)}. The replay of one region, as `carbongate simulate` prints it:", "",
              "```", *report.interrupted_text(rows[0][1].interrupted)[1:],
              "```", ""]
    return "\n".join(lines)


def _unpaused(rows: list[tuple[str, run.Result]]) -> str:
    """`` (no job paused in PJM or ZA)`` for the regions where none did, else nothing."""
    none = [label for label, result in rows if result.interrupted is not None and result.interrupted.pauses == 0]
    return f" (no job paused in {' or '.join(none)})" if none else ""


def _replace_section(text: str, section: str, *, title: str = INTERRUPTIBLE_TITLE) -> str:
    """``text`` with its section ``title`` (up to the next ``## ``) replaced, or appended."""
    start = text.find(title)
    if start < 0:
        return text.rstrip("\n") + "\n\n" + section
    end = text.find("\n## ", start + len(title))
    return text[:start] + section + ("" if end < 0 else text[end + 1:])


def _options(path: Path, spec: str, forecast: str, args: argparse.Namespace, *, policy_dir: Path) -> run.Options:
    return run.Options(grid=(path,), generate=spec, forecast=forecasts.parse_spec(forecast), horizon_h=48,
                       policy_dir=policy_dir, seed=args.seed, workers=args.workers,
                       settings=settings_mod.load(environ={}))


def _replays(files: Mapping[str, Path], args: argparse.Namespace, *, policy_dir: Path,
             workloads: Mapping[str, str] = WORKLOADS) -> list[Row]:
    rows = []
    for workload, spec in workloads.items():
        for forecast in FORECASTS:
            for label, path in files.items():
                result = run.simulate(_options(path, f"{spec},jobs={args.jobs}", forecast, args, policy_dir=policy_dir))
                rows.append(_row(label, workload, forecast, result))
                carbongate = result.summaries["carbongate"]
                print(f"{policy_dir.name:>10} {workload:<24} {forecast:<11} {label:<6} carbongate "
                      f"{carbongate.savings_pct:6.2f} % ({_share(carbongate.oracle_share)} of oracle) "
                      f"in {result.elapsed_s:.0f} s", flush=True)
    return rows


def _row(label: str, workload: str, forecast: str, result: run.Result) -> Row:
    return Row(
        region=label, workload=workload, forecast=forecast, summaries=result.summaries,
        decisions=Counter(f"{o.action} {o.reason}" for o in result.outcomes),
        releases=Counter(o.release_reason for o in result.outcomes if o.release_reason),
        release_decisions=sum(o.release_decisions for o in result.outcomes),
        jobs=len(result.table), elapsed_s=result.elapsed_s,
    )


def _edited_policies(scratch: Path, proposal: Proposal) -> Path:
    directory = scratch / "proposed"
    shutil.copytree(settings_mod.DEFAULT_POLICY_DIR, directory)
    config_path = directory / "carbongate" / "config" / "data.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    proposal.change(config)
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return directory


@dataclasses.dataclass(frozen=True)
class Performance:
    jobs: int
    wall_s: float
    workers: int
    release_decisions: int
    admissions: int
    cpu_s: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


def _performance(path: Path, args: argparse.Namespace) -> Performance:
    print(f"timing a full year of {PERF_REGION} with {args.perf_jobs} mixed jobs, {args.workers} workers", flush=True)
    load_before, cpu_before = os.getloadavg(), _cpu_s()
    started = time.perf_counter()
    result = run.simulate(_options(path, f"mixed,jobs={args.perf_jobs}", "perfect", args,
                                   policy_dir=settings_mod.DEFAULT_POLICY_DIR))
    wall = time.perf_counter() - started
    cpu = _cpu_s() - cpu_before
    print(f"  {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    return Performance(jobs=len(result.table), wall_s=wall, workers=args.workers,
                       release_decisions=sum(o.release_decisions for o in result.outcomes),
                       admissions=len(result.outcomes), cpu_s=cpu, load_before=load_before,
                       load_after=os.getloadavg())


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished worker processes."""
    mine, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + workers.ru_utime + workers.ru_stime


def _plot(path: Path, args: argparse.Namespace, picture: Path) -> None:
    result = run.simulate(_options(path, f"batch-1h,jobs={args.jobs}", "perfect", args,
                                   policy_dir=settings_mod.DEFAULT_POLICY_DIR))
    plot.write(result, picture, title=f"{PLOT_REGION} 2023, one-hour jobs with 24 h of slack, perfect forecast "
                                      "(the busiest week of submissions)")


# -- the report ---------------------------------------------------------------------


def _markdown(shipped: list[Row], proposed: list[Row], perf: Performance, args: argparse.Namespace,
              picture: Path, data_dir: Path) -> str:
    version = run._policies(settings_mod.DEFAULT_POLICY_DIR).version
    lines = [
        "# Savings: carbongate on a year of six grids",
        "",
        f"Written by `bench/carbon.py` on {clock.utc_now().strftime('%Y-%m-%d %H:%M UTC')} "
        f"(policies `{version}`, {args.jobs} jobs per replay, seed {args.seed}, {args.workers} worker processes, "
        f"{os.cpu_count()} CPUs). Grid data: the 2023 hourly Electricity Maps files (life-cycle intensity) "
        f"under `{_shown(data_dir)}`. Re-run with `.venv/bin/python bench/carbon.py --jobs {args.jobs}`.",
        "",
        "Every replay puts the five policies on the same jobs: **run_now** (at submission), **threshold_30min** "
        "(the seed guides' rule: wait in 30-minute steps while the reading is above 150 gCO2/kWh for tier 3, 200 "
        "for tier 2, up "
        "to the max delay), **sdk_window** (the Carbon Aware SDK's optimal window, asked once at submission), "
        "**carbongate** (the shipped Rego through the production admission and release paths) and **oracle** "
        "(the least-emitting start knowing the true grid). Savings are against run_now; *of oracle* is the "
        "share of the oracle's savings a policy reaches. See docs/simulate.md for the method.",
        "",
        "## Against the goals",
        "",
        *_goals(shipped),
        "",
    ]
    for workload in WORKLOADS:
        for forecast in FORECASTS:
            lines += [f"## {workload}, {forecast} forecast", "", *_table([r for r in shipped
                      if r.workload == workload and r.forecast == forecast]), ""]
    lines += [*_paper(shipped), "", *_held_back(shipped, proposed), "", *_performance_text(perf), "",
              "## The plot", "",
              f"![intensity and job starts per policy]({picture.name})", "",
              f"{PLOT_REGION}, one-hour jobs with 24 hours of slack, perfect forecast: the true intensity over the "
              "busiest week of submissions, each policy's job starts in that week, and over the whole year the "
              "share of job starts by hour of day against the mean intensity by hour.", ""]
    return "\n".join(lines)


def _goals(rows: list[Row]) -> list[str]:
    lines = ["| region | share of oracle, perfect | share of oracle, noisy 10 % | deadline misses "
             "| beats threshold_30min | beats sdk_window |",
             "|---|---|---|---|---|---|"]
    verdicts: dict[str, bool] = {"perfect": True, "noisy": True, "misses": True, "threshold": True, "sdk": True}
    for label in REGIONS:
        mine = [r for r in rows if r.region == label]
        shares = {f: [r.summaries["carbongate"].oracle_share for r in mine if r.forecast == f] for f in FORECASTS}
        misses = sum(r.summaries["carbongate"].deadline_misses for r in mine)
        beats_threshold = all(_beats(r, "threshold_30min") for r in mine)
        beats_sdk = all(_beats(r, "sdk_window") for r in mine)
        perfect_ok = all(s is not None and s >= GOALS["perfect"] for s in shares["perfect"])
        noisy_ok = all(s is not None and s >= GOALS["noisy:0.10"] for s in shares["noisy:0.10"])
        verdicts["perfect"] &= perfect_ok
        verdicts["noisy"] &= noisy_ok
        verdicts["misses"] &= misses == 0
        verdicts["threshold"] &= beats_threshold
        verdicts["sdk"] &= beats_sdk
        lines.append(f"| {label} | {_shares(shares['perfect'], perfect_ok)} "
                     f"| {_shares(shares['noisy:0.10'], noisy_ok)} "
                     f"| {misses} | {_yes(beats_threshold)} | {_yes(beats_sdk)} |")
    lines += ["", "Each cell covers both workloads (1-hour / mixed). Goals: >= 95 % of the oracle's savings with "
              "perfect forecasts, >= 85 % with noisy 10 % forecasts, zero deadline misses, more savings than "
              "the threshold rule and the SDK window in every region.", "",
              f"- >= 95 % of the oracle with perfect forecasts in every region: **{_yes(verdicts['perfect'])}**",
              f"- >= 85 % with noisy forecasts in every region: **{_yes(verdicts['noisy'])}**",
              f"- zero deadline misses: **{_yes(verdicts['misses'])}**",
              f"- beats the threshold rule everywhere: **{_yes(verdicts['threshold'])}**; "
              f"beats the SDK window everywhere: **{_yes(verdicts['sdk'])}**"]
    return lines


def _beats(row: Row, peer: str) -> bool:
    """More savings than the peer; where nothing can be saved, a tie (both zero) counts."""
    mine, theirs = row.summaries["carbongate"].savings_pct, row.summaries[peer].savings_pct
    return mine > theirs or (mine == theirs == 0.0)


def _table(rows: list[Row]) -> list[str]:
    lines = ["| region | run_now kg | threshold_30min | sdk_window | carbongate | oracle | carbongate of oracle "
             "| carbongate mean / p95 delay | misses (all policies) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        s = row.summaries
        misses = sum(x.deadline_misses for x in s.values())
        lines.append(
            f"| {row.region} | {s['run_now'].emissions_g / 1000:.2f} | {_pct(s['threshold_30min'])} "
            f"| {_pct(s['sdk_window'])} | {_pct(s['carbongate'])} | {_pct(s['oracle'])} "
            f"| {_share(s['carbongate'].oracle_share)} | {s['carbongate'].mean_delay_h:.1f} h / "
            f"{s['carbongate'].p95_delay_h:.1f} h | {misses} |")
    return lines


def _paper(rows: list[Row]) -> list[str]:
    bound = {r.region: r.summaries["oracle"].savings_pct for r in rows
             if r.workload == "1-hour jobs, 24 h slack" and r.forecast == "perfect"}
    mean = sum(bound.values()) / len(bound)
    return [
        "## Against the published upper bound",
        "",
        "Sukprasert et al. (EuroSys 2024, *On the Limitations of Carbon-Aware Temporal and Spatial Workload "
        "Shifting in the Cloud*) bound what temporal shifting can save for one-hour jobs with 24 hours of slack: "
        f"about {PAPER['mean']} % on average over their 123 regions, about {PAPER['CAISO']} % in CAISO and about "
        f"{PAPER['PJM']} % in PJM (2022 data). Our oracle is the same bound, on 2023 data:",
        "",
        "| region | oracle, 1-hour jobs, 24 h slack (2023) | paper (2022) |",
        "|---|---|---|",
        *[f"| {label} | {value:.1f} % | {_paper_value(label)} |" for label, value in bound.items()],
        f"| mean of these six | {mean:.1f} % | {PAPER['mean']} % (123 regions) |",
        "",
        "Same order of magnitude and the same ranking (solar-driven CAISO far above flat, fossil PJM and ZA); "
        "the six regions here are not the paper's 123, and 2023 is not 2022 (more solar in CAISO).",
    ]


def _paper_value(label: str) -> str:
    return f"{PAPER[label]} %" if label in PAPER else "-"


def _held_back(shipped: list[Row], proposed: list[Row]) -> list[str]:
    lines = ["## What holds carbongate back", "",
             "How carbongate's decisions went for the one-hour workload with a perfect forecast (admission "
             "reason; release reason for deferred jobs):", "",
             "| region | admitted at once because clean enough | deferred | of which released early, clean enough "
             "| released when the planned window opened |", "|---|---|---|---|---|"]
    for row in shipped:
        if row.workload != "1-hour jobs, 24 h slack" or row.forecast != "perfect":
            continue
        deferred = sum(n for k, n in row.decisions.items() if k.startswith("defer"))
        lines.append(f"| {row.region} | {row.decisions.get('admit clean-now', 0)} | {deferred} "
                     f"| {row.releases.get('clean-now', 0)} | {row.releases.get('window-open', 0)} |")
    lines += ["", "Tier 3 (batch) ships with no threshold (`threshold_g_per_kwh` 0) and a `min_saving_pct` of 2: "
              "it waits for the cleanest window within its slack and moves only for a saving of 2 % or more, so "
              "the one-hour tier-3 workload is where carbongate should come close to the oracle; what it leaves "
              "is windows that save under 2 % and forecast error. Tier 2 keeps a threshold of 200 gCO2/kWh and a "
              "10 % minimum saving (short delays for staging and CI: a clean-enough grid is not worth waiting "
              "on), which is what holds the mixed workload back. The figures for the earlier shipped tier-3 "
              "values (threshold 150, 10 %) and their analysis are in docs/simulate.md."]
    if proposed:
        lines += ["", f"### Proposed config: {PROPOSAL.title}", "", f"Why: {PROPOSAL.why}.", "",
                  "The mixed workload replayed with a copy of the policies whose `config/data.json` has "
                  "only that change (carbongate's figures; the peers are unchanged):", "",
                  "| region | forecast | carbongate, shipped | carbongate, proposed | of oracle, proposed | misses |",
                  "|---|---|---|---|---|---|"]
        for row in proposed:
            key = (row.region, row.workload, row.forecast)
            before = next(r for r in shipped if (r.region, r.workload, r.forecast) == key)
            s = row.summaries["carbongate"]
            lines.append(f"| {row.region} | {row.forecast} | {_pct(before.summaries['carbongate'])} | {_pct(s)} "
                         f"| {_share(s.oracle_share)} | {s.deadline_misses} |")
    return lines


def _performance_text(perf: Performance, *, only: bool = False) -> list[str]:
    verdict = "meets" if perf.wall_s < PERF_GOAL_S else "misses"
    how = ("Written by `bench/carbon.py --only-performance` on "
           f"{clock.utc_now().strftime('%Y-%m-%d %H:%M UTC')}: a" if only else "A")
    return [
        PERFORMANCE_TITLE,
        "",
        f"{how} full year of {PERF_REGION} with {perf.jobs} mixed jobs, perfect forecast, {perf.workers} worker "
        f"processes: **{perf.wall_s:.0f} s** wall-clock ({verdict} the {PERF_GOAL_S:.0f} s goal), "
        f"{perf.cpu_s:.0f} s of CPU over all processes. Machine: {os.cpu_count()} CPUs shared with other work; "
        f"load average (1/5/15 min) {_load(perf.load_before)} before the run and {_load(perf.load_after)} after, "
        "so the wall-clock figure is that of a busy machine. It asked the "
        f"admission policy {perf.admissions} times and the release path {perf.release_decisions} times (the "
        "policy's share of them for the jobs due at one instant in one engine call); where the time goes, "
        "and what it was before, is in docs/simulate.md, *Cost*.",
    ]


def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


def _pct(summary: run.Summary) -> str:
    return f"{summary.savings_pct:.1f} %"


def _share(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f} %"


def _shares(shares: list[float | None], ok: bool) -> str:
    return " / ".join(_share(s) for s in shares) + ("" if ok else " ✗")


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _shown(path: Path) -> str:
    try:
        return str(Path(os.path.relpath(path, ROOT)))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
