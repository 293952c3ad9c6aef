"""``carbongate feed``, ``carbongate grid show`` and ``carbongate grid plot``.

``grid show`` and ``grid plot`` read the snapshot the feed published
(``grid.snapshot_path``), or build one from trace files with ``--grid`` (and
``--now`` to pick the instant), so a person can look at exactly what the
policy would see.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from carbongate import cliargs, clock, kube
from carbongate import settings as settings_mod


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    feed = subparsers.add_parser("feed", parents=[common],
                                 help="run the carbon feed sidecar (/healthz, /metrics)")
    feed.add_argument("--providers", type=Path, help="providers YAML (default: feed.providers_file; "
                                                     "none: replay the demo traces)")
    feed.add_argument("--bind", help="host:port for /healthz and /metrics (default: feed.bind)")
    feed.add_argument("--publish-to", choices=("file", "opa", "embedded"),
                      help="also PUT to the OPA server (opa); the snapshot file is always written")
    feed.add_argument("--keda-bind", help="host:port for the KEDA external scaler (gRPC; default: "
                                          "feed.keda_bind, empty: off); see docs/keda.md")
    feed.add_argument("--once", action="store_true", help="refresh and publish once, then exit")
    kube.add_arguments(feed)  # for the Lease and shared readings when feed.lease_name is set
    feed.set_defaults(handler=_feed)

    grid = subparsers.add_parser("grid", parents=[common], help="look at the grid data the policy sees")
    actions = grid.add_subparsers(dest="grid_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", parents=[common], help="a table per region")
    _source_arguments(show)
    show.set_defaults(handler=_show)
    plot = actions.add_parser("plot", parents=[common], help="a PNG of intensity and forecast")
    _source_arguments(plot)
    plot.add_argument("--region", required=True, help="region id, for example GB")
    plot.add_argument("--out", type=Path, default=None,
                      help="PNG file to write (default: ./grid.png; the path written is printed)")
    plot.set_defaults(handler=_plot)


DEFAULT_PLOT = Path("grid.png")


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--snapshot", type=Path, help="snapshot file (default: grid.snapshot_path)")
    parser.add_argument("--grid", type=Path, nargs="+", metavar="TRACE.csv",
                        help="build the grid from trace files instead of reading the snapshot")
    parser.add_argument("--now", type=cliargs.instant,
                        help="instant: RFC 3339 or now, now-2h, now+30m (default: now)")
    parser.add_argument("--duration", type=int, default=60, metavar="MIN",
                        help="window length for the best window, minutes (default 60)")


def _settings(args: argparse.Namespace, overrides: dict[str, dict[str, Any]] | None = None) -> settings_mod.Settings:
    return settings_mod.load(config_file=args.config, overrides=overrides)


def _feed(args: argparse.Namespace) -> int:
    from carbon_feed import service

    feed: dict[str, Any] = {}
    if args.providers:
        feed["providers_file"] = args.providers
    if args.bind:
        feed["bind"] = args.bind
    if args.publish_to:
        feed["publish_to"] = args.publish_to
    if args.keda_bind:
        feed["keda_bind"] = args.keda_bind
    overrides: dict[str, dict[str, Any]] = {"feed": feed} if feed else {}
    if kube.overrides(args):
        overrides["kube"] = kube.overrides(args)
    try:
        settings = _settings(args, overrides or None)
    except settings_mod.SettingsError as error:
        print(f"carbongate feed: {error}", file=sys.stderr)
        return 2
    return service.serve(settings, once=args.once)


def _grid(args: argparse.Namespace) -> tuple[Any, datetime]:
    """The snapshot to look at and the instant to look at it from."""
    from carbon_feed import traces
    from planner import snapshot as contract

    settings = _settings(args)
    now = args.now or clock.utc_now().replace(microsecond=0)
    if args.grid:
        grid = settings.grid
        document = traces.snapshot_from_traces(
            args.grid, now=now, horizon_h=grid.forecast_horizon_h, grace_s=grid.stale_grace_s,
            durations_min=sorted({*grid.window_durations_min, args.duration}), history_h=24,
            read=traces.load_any)  # every layout simulate --grid reads
        return contract.check_snapshot(document), now
    return contract.load_snapshot(args.snapshot or settings.grid.snapshot_path), now


def _show(args: argparse.Namespace) -> int:
    from carbon_feed import views

    try:
        snapshot, now = _grid(args)
    except (OSError, ValueError, settings_mod.SettingsError) as error:
        print(f"carbongate grid show: {error}", file=sys.stderr)
        return 2
    print(views.table(snapshot, now=now, duration_min=args.duration))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from carbon_feed import views

    try:
        snapshot, now = _grid(args)
        named = {name.upper(): name for name in snapshot["regions"]}  # CAISO_NORTH as Caiso_North
        region = snapshot["regions"].get(named.get(args.region.upper(), args.region))
        if region is None:
            raise ValueError(f"no region {args.region!r} in the grid "
                             f"(have: {', '.join(snapshot['regions']) or 'none'})")
        out = args.out or DEFAULT_PLOT
        views.plot(region, now=now, duration_min=args.duration, out=out)
    except (OSError, ValueError, settings_mod.SettingsError) as error:
        print(f"carbongate grid plot: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out.resolve()}" + ("" if args.out else " (choose the file with --out)"))
    return 0
