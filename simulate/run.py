"""One replay: the grid, the jobs, five policies side by side, and what each emitted.

Order of work: read the traces; read or draw the jobs; keep those whose
whole window (submission to deadline, in every region they may use) lies
inside the traces; estimate each job's energy once with the governance
energy model; place the jobs with every policy; charge every placement on
the true grid. The baselines are arithmetic on arrays; carbongate runs
through the production paths (:mod:`simulate.replay`), split across worker
processes when asked (each builds its own engine: an embedded OPA engine
must not cross a fork).

Regions a workload names that the platform config does not list are added
to the config for the replay (:func:`added_regions`), with synthesized node
labels and no latency, and the output says so: otherwise carbongate could
never shift there while the oracle does, and the comparison would be unfair
without a word.

Jobs marked ``interruptible`` are placed by start time like every other job
in the five-policy table (what carbongate would do if they did not opt in),
and then replayed once more with pauses and resumes
(:mod:`simulate.interruptible`), beside the oracle of the cleanest hours:
``Result.interruptible``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import multiprocessing
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from carbongate import settings as settings_mod
from planner import energy
from policy_engine import errors as engine_errors
from policy_engine import factory, loader
from simulate import baselines, forecasts, generate, grid, interruptible, placements, progress, replay, snapshots
from simulate import workload as workload_mod

log = logging.getLogger(__name__)

POLICIES: Final = ("run_now", "threshold_30min", "sdk_window", "carbongate", "oracle")
CONFIG_PATH: Final = "carbongate.config"
# A policy that reads data.carbongate.grid (or all of data.carbongate) needs every
# forecast issue published to the engine.
_READS_GRID = re.compile(r"data\.carbongate(?:\.grid\b|\s*\[|(?![\w.]))")


class SimulationError(ValueError):
    """The replay cannot run as asked; the message says what to fix."""


@dataclass(frozen=True)
class Options:
    """Everything a replay is asked to do."""

    grid: tuple[Path, ...]
    forecast: forecasts.Spec
    horizon_h: int
    policy_dir: Path
    seed: int = 0
    workload: Path | None = None
    generate: str | None = None
    workers: int = 1
    settings: settings_mod.Settings = dataclasses.field(default_factory=settings_mod.Settings)


@dataclass(frozen=True)
class Summary:
    """One policy's figures, as the JSON output names them."""

    emissions_g: float
    savings_pct: float
    oracle_share: float | None
    mean_delay_h: float
    p95_delay_h: float
    deadline_misses: int


@dataclass(frozen=True)
class Interrupted:
    """The interruptible jobs under five ways of running them (grams per way, per job)."""

    ways: Mapping[str, np.ndarray]   # run_now, start_time, start_oracle, interruptible, slice_oracle
    deadline_misses: int
    pauses: int
    decisions: int
    work_h: float

    def savings_pct(self, way: str) -> float:
        baseline = float(self.ways["run_now"].sum())
        return round(100.0 * (baseline - float(self.ways[way].sum())) / baseline, 3) if baseline > 0 else 0.0

    def oracle_share(self, way: str) -> float | None:
        best = float(self.ways["run_now"].sum() - self.ways["slice_oracle"].sum())
        got = float(self.ways["run_now"].sum() - self.ways[way].sum())
        return round(got / best, 4) if best > 1e-9 else None


INTERRUPT_WAYS: Final = ("run_now", "start_time", "start_oracle", "interruptible", "slice_oracle")
# The node label an added region's nodes are assumed to carry (the zone id as the value).
ADDED_REGION_LABEL: Final = "topology.kubernetes.io/region"


@dataclass(frozen=True)
class Result:
    """A finished replay."""

    options: Options
    table: placements.Table
    truths: Mapping[str, Any]
    placements: Mapping[str, placements.Placements]
    emissions_g: Mapping[str, np.ndarray]
    summaries: Mapping[str, Summary]
    outcomes: tuple[replay.Outcome, ...]
    skipped: int
    policy_version: str
    elapsed_s: float
    interrupted: Interrupted | None = None
    # Regions the workload names that the platform config lacked: added for this replay only.
    added_regions: tuple[str, ...] = ()

    @property
    def deadline_misses(self) -> int:
        """carbongate's misses: the promise under test (every policy's are in ``summaries``)."""
        return self.summaries["carbongate"].deadline_misses


def simulate(options: Options) -> Result:
    """Replay the workload under every policy."""
    started = time.perf_counter()
    traces = grid.load(options.grid)
    jobs = _jobs(options, traces)
    replayable = [j for j in jobs if _fits(j, traces)]
    if not replayable:
        raise SimulationError(f"none of the {len(jobs)} jobs fits inside the traces "
                              "(submission to deadline, in every region it may use)")
    needed = sorted({r for j in replayable for r in j.regions})
    declared = _policies(options.policy_dir)
    added = added_regions(_config(declared), [r for j in replayable if len(j.regions) > 1 for r in j.regions])
    with config_with_regions(options, declared, added) as replayed:
        policy_set = _policies(replayed.policy_dir) if added else declared
        found = _replay(replayed, traces, replayable, needed, _config(policy_set), policy_set)
    return dataclasses.replace(found, options=options, skipped=len(jobs) - len(replayable),
                               policy_version=declared.version, added_regions=tuple(added),
                               elapsed_s=time.perf_counter() - started)


def _replay(options: Options, traces: Mapping[str, grid.Trace], replayable: Sequence[workload_mod.Job],
            needed: Sequence[str],
            config: Mapping[str, Any], policy_set: loader.PolicySet) -> Result:
    """The five policies on the jobs that fit; the caller fills in what it knows better."""
    model = energy.load(options.settings.governance.energy_model_file)
    table = placements.Table.of(replayable, [
        model.energy_kwh(workload_mod.kubernetes_job(j), j.duration_s) for j in replayable])
    truths = {r: traces[r].series for r in needed}
    forecast = forecasts.Forecasts(options.forecast, truths=truths, horizon_s=options.horizon_h * 3600,
                                   seed=options.seed)
    network = _network(config)
    # The five-policy table is by start time: interruptible jobs enter it as if they had not opted in.
    start_only = [dataclasses.replace(j, interruptible=False) for j in replayable]
    # carbongate's worker processes start first; the peers are placed here while they replay.
    with _carbongate(options, start_only, needed, config, policy_set) as replayed:
        placed = {
            "run_now": placements.run_at_submit(table),
            "threshold_30min": baselines.threshold_30min(table, truths),
            "sdk_window": baselines.sdk_window(table, forecast),
            "oracle": baselines.oracle(table, truths, network_kwh_per_gb=network),
        }
        outcomes = replayed()
    placed["carbongate"] = placements.Placements(
        start_s=np.array([o.start_s for o in outcomes]), region=tuple(o.region for o in outcomes))
    placed = {name: placed[name] for name in POLICIES}
    emitted = {name: placements.emissions_g(table, p, truths, network_kwh_per_gb=network) for name, p in placed.items()}
    interrupted = _interrupted(options, table, truths, placed, emitted, outcomes, config, forecast)
    return Result(
        options=options, table=table, truths=truths, placements=placed, emissions_g=emitted,
        summaries=summarise(table, placed, emitted), outcomes=tuple(outcomes),
        skipped=0, policy_version=policy_set.version, elapsed_s=0.0, interrupted=interrupted,
    )


# -- regions the platform config lacks ----------------------------------------------


def added_regions(config: Mapping[str, Any], needed: Sequence[str]) -> list[str]:
    """Regions in ``needed`` that ``data.carbongate.config.regions`` does not list, sorted.

    The caller passes the regions of jobs that may move: a job's only region is its home,
    which the policies always allow, so a one-region replay adds nothing.
    """
    listed = config.get("regions")
    known = set(listed) if isinstance(listed, Mapping) else set()
    return sorted(set(needed) - known)


@contextlib.contextmanager
def config_with_regions(options: Options, policy_set: loader.PolicySet,
                        added: Sequence[str]) -> Iterator[Options]:
    """``options`` replaying a copy of the policy directory whose config lists ``added`` too.

    The engine owns ``data.carbongate.config`` (it comes from the directory's
    data.json; a run-time write there is refused), so the copy is how the
    replay's engines, in this process and in every worker, see the extra
    regions exactly as if the platform team had added them. The copy lives
    as long as the replay.
    """
    if not added:
        yield options
        return
    document = next(d for d in policy_set.documents if d.data_path == CONFIG_PATH)
    config = dict(document.value)
    regions = dict(config.get("regions") or {})
    for region in added:
        regions[region] = {"node_labels": {ADDED_REGION_LABEL: region}, "latency_ms": 0}
    config["regions"] = regions
    with tempfile.TemporaryDirectory(prefix="carbongate-simulate-") as scratch:
        copy = Path(scratch) / "policies"
        shutil.copytree(options.policy_dir, copy, ignore=shutil.ignore_patterns(".*"))
        (copy / document.file).write_text(json.dumps(config, indent=2), encoding="utf-8")
        yield dataclasses.replace(options, policy_dir=copy)


def _interrupted(options: Options, table: placements.Table, truths: Mapping[str, Any],
                 placed: Mapping[str, placements.Placements], emitted: Mapping[str, np.ndarray],
                 outcomes: Sequence[replay.Outcome], config: Mapping[str, Any],
                 forecast: forecasts.Forecasts) -> Interrupted | None:
    """Replay the interruptible jobs with pauses; None when the workload has none."""
    chosen = [i for i, job in enumerate(table.jobs) if job.interruptible]
    if not chosen:
        return None
    settings = options.settings
    engine = factory.build(dataclasses.replace(settings.engine, kind="embedded", policy_dir=options.policy_dir,
                                               embedded_pool_size=1))
    try:
        replayer = interruptible.Replayer(engine=engine, forecast=forecast, config=config,
                                          lead_s=float(settings.deferral.deadline_lead_s),
                                          plan_step_s=settings.grid.plan_step_min * 60)
        ways: dict[str, list[float]] = {way: [] for way in INTERRUPT_WAYS}
        misses = pauses = decisions = 0
        for i in chosen:
            job, outcome = table.jobs[i], outcomes[i]
            rate = float(table.energy_kwh[i]) / job.duration_s
            truth = truths[outcome.region]
            ran = replayer.run(job, region=outcome.region, deferred=outcome.action == "defer",
                               deadline_s=outcome.deadline_s)
            misses += ran.finished_s > job.deadline_s + 1e-6
            pauses, decisions = pauses + ran.pauses, decisions + ran.decisions
            ways["interruptible"].append(interruptible.emissions_g(ran.segments, truth, kwh_per_s=rate))
            ways["slice_oracle"].append(interruptible.emissions_g(
                replayer.oracle(job, truths[job.home]), truths[job.home], kwh_per_s=rate))
            for way, policy in (("run_now", "run_now"), ("start_time", "carbongate"), ("start_oracle", "oracle")):
                ways[way].append(float(emitted[policy][i]))
    finally:
        engine.close()
    return Interrupted(ways={k: np.array(v) for k, v in ways.items()}, deadline_misses=misses, pauses=pauses,
                       decisions=decisions, work_h=float(sum(table.duration_s[i] for i in chosen)) / 3600)


def summarise(table: placements.Table, placed: Mapping[str, placements.Placements],
              emitted: Mapping[str, np.ndarray]) -> dict[str, Summary]:
    """Each policy's totals against run_now and the oracle."""
    baseline = float(emitted["run_now"].sum())
    best_saving = baseline - float(emitted["oracle"].sum())
    found = {}
    for name, chosen in placed.items():
        total = float(emitted[name].sum())
        delays_h = (chosen.start_s - table.submit_s) / 3600.0
        finished = chosen.start_s + table.duration_s
        found[name] = Summary(
            emissions_g=round(total, 3),
            savings_pct=round(100.0 * (baseline - total) / baseline, 3) if baseline > 0 else 0.0,
            oracle_share=round((baseline - total) / best_saving, 4) if best_saving > 1e-9 else None,
            mean_delay_h=round(float(delays_h.mean()), 3),
            p95_delay_h=round(float(np.percentile(delays_h, 95)), 3),
            deadline_misses=int(np.count_nonzero(finished > table.deadline_s + 1e-6)),
        )
    return found


# -- jobs ---------------------------------------------------------------------------


def _jobs(options: Options, traces: Mapping[str, grid.Trace]) -> list[workload_mod.Job]:
    if (options.workload is None) == (options.generate is None):
        raise SimulationError("give exactly one of --workload FILE and --generate SPEC")
    if options.workload is not None:
        jobs = workload_mod.read_csv(options.workload)
    else:
        spec = generate.parse_spec(options.generate or "")
        regions = spec.regions or tuple(traces)
        _known(regions, traces, where="--generate regions")
        span = (max(traces[r].start_s for r in regions), min(traces[r].end_s for r in regions))
        jobs = generate.generate(spec, seed=options.seed, span_s=span, grid_regions=tuple(traces))
    for job in jobs:
        _known(job.regions, traces, where=f"job {job.job_id}")
    return jobs


def _known(regions: Sequence[str], traces: Mapping[str, grid.Trace], *, where: str) -> None:
    missing = [r for r in regions if r not in traces]
    if missing:
        raise SimulationError(f"{where}: no trace for region(s) {', '.join(missing)}; "
                              f"the traces hold {', '.join(traces)}")


def _fits(job: workload_mod.Job, traces: Mapping[str, grid.Trace]) -> bool:
    return all(traces[r].start_s <= job.submit_s and job.deadline_s <= traces[r].end_s for r in job.regions)


# -- policies -----------------------------------------------------------------------


def _policies(directory: Path) -> loader.PolicySet:
    try:
        return loader.load(directory)
    except engine_errors.PolicyCompileError as error:
        raise SimulationError(str(error)) from error


def _config(policy_set: loader.PolicySet) -> Mapping[str, Any]:
    for document in policy_set.documents:
        if document.data_path == CONFIG_PATH:
            return document.value
    raise SimulationError(f"{policy_set.directory} has no carbongate/config/data.json (the platform config)")


def _network(config: Mapping[str, Any]) -> float:
    value = config.get("network_kwh_per_gb", 0.0)
    return float(value) if isinstance(value, int | float) and value >= 0 else 0.0


def reads_grid(policy_set: loader.PolicySet) -> bool:
    """Whether any policy reads data.carbongate.grid (then each forecast issue is published)."""
    return any(_READS_GRID.search(m.source) for m in policy_set.modules if not m.is_test)


@contextlib.contextmanager
def _carbongate(options: Options, jobs: Sequence[workload_mod.Job], regions: Sequence[str],
                config: Mapping[str, Any], policy_set: loader.PolicySet
                ) -> Iterator[Callable[[], list[replay.Outcome]]]:
    """carbongate's outcomes, got by calling what this yields.

    With several workers their processes are started on entering, so the
    caller's own work overlaps theirs; with one, the replay runs in this
    process when called.
    """
    publish = reads_grid(policy_set)
    if publish:
        log.warning("the policies in %s read data.carbongate.grid: every forecast issue is published "
                    "to the engine, which rebuilds it each simulated hour (slow)", options.policy_dir)
    shards = [list(range(w, len(jobs), options.workers)) for w in range(max(options.workers, 1))]
    shards = [s for s in shards if s]
    if len(shards) == 1:
        yield lambda: _replay_shard(options, list(jobs), regions, config, publish)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=len(shards), mp_context=context) as pool:
        futures = [pool.submit(_replay_shard, options, [jobs[i] for i in shard], regions, config, publish)
                   for shard in shards]

        def merged() -> list[replay.Outcome]:
            found: list[replay.Outcome | None] = [None] * len(jobs)
            for shard, future in zip(shards, futures, strict=True):
                for i, outcome in zip(shard, future.result(), strict=True):
                    found[i] = outcome
            return [o for o in found if o is not None]

        yield merged


def shard_label(jobs: Sequence[workload_mod.Job], options: Options) -> str:
    """Which share of the workload a process replays, for its progress lines."""
    return "" if options.workers <= 1 else f"(one of {options.workers} workers, {len(jobs)} jobs)"


def _replay_shard(options: Options, jobs: list[workload_mod.Job], regions: Sequence[str],
                  config: Mapping[str, Any], publish: bool) -> list[replay.Outcome]:
    """carbongate on some jobs, with an engine of this process's own."""
    traces = grid.load(options.grid)
    truths = {r: traces[r].series for r in regions}
    forecast = forecasts.Forecasts(options.forecast, truths=truths, horizon_s=options.horizon_h * 3600,
                                   seed=options.seed)
    settings = options.settings
    engine_settings = dataclasses.replace(settings.engine, kind="embedded", policy_dir=options.policy_dir,
                                          embedded_pool_size=1)
    try:
        engine = factory.build(engine_settings)
    except engine_errors.PolicyEngineError as error:
        raise SimulationError(f"the policies in {options.policy_dir} cannot be loaded: {error}") from error
    try:
        runner = replay.Replay(
            engine=engine,
            publisher=snapshots.Publisher(forecast, window_durations_min=settings.grid.window_durations_min),
            setup=replay.Setup(settings=settings, config=config, horizon_s=options.horizon_h * 3600,
                               publish_grid=publish),
            energy_model=energy.load(settings.governance.energy_model_file),
            progress=progress.Reporter(label=f"carbongate replay {shard_label(jobs, options)}"),
        )
        return runner.run(jobs)
    finally:
        engine.close()
