"""``carbongate simulate``: replay a workload on grid traces through the production policies.

Examples::

    carbongate simulate --grid examples/grid/GB_2023_hourly.csv --generate mixed,jobs=2000
    carbongate simulate --grid GB.csv DE.csv --workload jobs.csv --forecast noisy:0.10 --json
    carbongate simulate --grid examples/grid/*.csv --generate batch-1h --plot replay.png

Exit codes: 0 done, 2 bad input (the message says what to fix).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from carbongate import settings as settings_mod

log = logging.getLogger(__name__)

HORIZONS_H = (24, 48, 72)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "simulate", parents=[common],
        help="replay a workload on grid traces: carbongate against run-now, threshold, SDK window and oracle")
    parser.add_argument("--grid", type=Path, nargs="+", required=True, metavar="FILE",
                        help="grid traces (Electricity Maps CSV or time,value columns); regions are their zone ids")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workload", type=Path, metavar="FILE",
                        help="jobs CSV with the header job_id,submit_time,tier,team,cpu,memory_gb,"
                             "duration_h,max_delay_h,regions,data_gb")
    source.add_argument("--generate", metavar="SPEC",
                        help="draw a workload: [mixed|batch-1h][,key=value...] (see docs/simulate.md)")
    parser.add_argument("--forecast", default="perfect",
                        help="perfect, noisy:0.10, persistence or recorded:FILE (default perfect)")
    parser.add_argument("--horizon-h", type=int, choices=HORIZONS_H,
                        help="forecast horizon in hours (default grid.forecast_horizon_h)")
    parser.add_argument("--policy-dir", type=Path, help="Rego policy directory (default: the shipped policies)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator and the noisy forecast")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes replaying carbongate's decisions (default: up to 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="draw intensity and job starts per policy")
    parser.add_argument("--write-workload", type=Path, metavar="FILE",
                        help="also write the jobs replayed as a workload CSV")
    parser.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from simulate import forecasts, generate, grid, plot, report, run, workload

    overrides: dict[str, dict[str, Any]] = {}
    if args.policy_dir:
        overrides["engine"] = {"policy_dir": args.policy_dir}
    try:
        settings = settings_mod.load(config_file=args.config, overrides=overrides)
        if args.workers < 1:
            raise run.SimulationError("--workers must be at least 1")
        options = run.Options(
            grid=tuple(args.grid), workload=args.workload, generate=args.generate,
            forecast=forecasts.parse_spec(args.forecast),
            horizon_h=args.horizon_h or settings.grid.forecast_horizon_h,
            policy_dir=settings.engine.policy_dir, seed=args.seed, workers=args.workers, settings=settings,
        )
        result = run.simulate(options)
        if args.write_workload:
            workload.write_csv(result.table.jobs, args.write_workload)
        if args.plot:
            plot.write(result, args.plot)
    except (settings_mod.SettingsError, run.SimulationError, grid.GridError, workload.WorkloadError,
            generate.SpecError, forecasts.ForecastError) as error:
        print(f"carbongate simulate: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_json(result), indent=2) if args.json else report.as_text(result))
    return 0
