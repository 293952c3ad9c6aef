"""``carbongate governance`` (the service) and ``carbongate budget report``.

``budget report`` reads the ledger directly (no service needed), so a
platform team can produce the month's report from a laptop pointed at the
database, or from the governance pod with ``kubectl exec``. It opens the
ledger read-only and never migrates it (only the service does).
``budget report --demo`` writes a month of made-up runs into a temporary
ledger (``governance.demo``) and reports on that, so a newcomer can see a
report before any cluster records a run; it never opens a real database.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbongate import clock, kube
from carbongate import settings as settings_mod

if TYPE_CHECKING:
    from governance import budgets, periods


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add ``governance`` and ``budget report`` to the ``carbongate`` command."""
    serve = subparsers.add_parser(
        "governance", parents=[common],
        help="run the governance service: record runs, publish budgets, serve /budgets")
    _database_flags(serve)
    serve.add_argument("--bind", help="host:port of /healthz, /metrics, /budgets")
    kube.add_arguments(serve)
    serve.set_defaults(handler=_serve)

    budget = subparsers.add_parser("budget", parents=[common], help="carbon budgets per team")
    budget_commands = budget.add_subparsers(dest="budget_command", metavar="COMMAND")
    budget.set_defaults(handler=lambda _args: _usage(budget))
    report = budget_commands.add_parser(
        "report", parents=[common],
        help="per team: used, limit, percent, saved, deferred runs, mean delay")
    report.add_argument("--period", help="YYYY-MM or YYYY-Www (default: the current period)")
    report.add_argument("--team", help="only this team")
    report.add_argument("--format", choices=("table", "csv", "json", "html"), default="table")
    report.add_argument("--out", type=Path, help="write to this file instead of stdout")
    report.add_argument("--demo", action="store_true",
                        help="report on a month of made-up runs for a few teams, in a temporary "
                             "ledger (default period: last month); no database is opened")
    _database_flags(report)
    report.set_defaults(handler=_report)


def _database_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="ledger URL (sqlite:///... or postgresql://...)")
    parser.add_argument("--budgets", type=Path, help="budgets file (YAML)")


def _settings(args: argparse.Namespace, **extra: Any) -> settings_mod.Settings:
    governance: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if args.database_url:
        governance["database_url"] = args.database_url
    if args.budgets:
        governance["budgets_file"] = args.budgets
    overrides: dict[str, dict[str, Any]] = {"governance": governance} if governance else {}
    cluster = kube.overrides(args)
    if cluster:
        overrides["kube"] = cluster
    return settings_mod.load(config_file=args.config, overrides=overrides or None)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _serve(args: argparse.Namespace) -> int:
    from governance import ledger, service

    try:
        settings = _settings(args, bind=args.bind)
        return service.run(settings)
    except (settings_mod.SettingsError, ledger.LedgerError) as error:
        print(f"carbongate governance: {error}", file=sys.stderr)
        return 2


def _report(args: argparse.Namespace) -> int:
    from governance import budgets, demo, ledger, periods, service

    try:
        if args.demo and (args.database_url or args.budgets):
            raise settings_mod.SettingsError("--demo brings its own ledger and budgets: "
                                             "leave out --database-url and --budgets")
        settings = _settings(args)
        config = demo.config() if args.demo else budgets.load_config(settings.governance.budgets_file)
        now = clock.utc_now().replace(microsecond=0)
        period = _period(args, config, now)
        if args.demo:
            with demo.ledger_url(period, now=now) as url:
                return _write_report(args, url, config, period, now)
        return _write_report(args, service.database_url(settings.governance), config, period, now)
    except (settings_mod.SettingsError, budgets.BudgetError, periods.PeriodError,
            ledger.LedgerError) as error:
        print(f"carbongate budget report: {error}", file=sys.stderr)
        return 2


def _period(args: argparse.Namespace, config: budgets.BudgetConfig, now: datetime) -> periods.Period:
    """The asked period; by default the current one, or the last whole one for ``--demo``."""
    from governance import periods

    if args.period:
        return periods.parse(args.period)
    current = periods.containing(now, config.period)
    return periods.containing(current.start - timedelta(seconds=1), config.period) if args.demo else current


def _write_report(args: argparse.Namespace, url: str, config: budgets.BudgetConfig, period: periods.Period,
                  now: datetime) -> int:
    from governance import ledger, render, report

    store = ledger.open_ledger_read_only(url)
    try:
        text = render.render(report.build(store, config, period=period, now=now, team=args.team),
                             args.format)
    finally:
        store.close()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
