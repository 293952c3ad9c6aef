"""The one command line, ``carbongate``: each component adds its own subcommands.

A component contributes a module with ``register(subparsers, common)``; each
subcommand sets ``handler`` (a function taking the parsed arguments and
returning an exit code). The command reads configuration only through
:mod:`carbongate.settings`, with ``--config`` naming a TOML file (a ``Path``
in every subcommand); a :class:`carbongate.settings.SettingsError` from any
handler is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from carbongate import settings as settings_mod

# Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = (
    "webhook.cli",          # serve, review
    "policy_engine.cli",    # policy test
    "certs.cli",            # certs generate
    "carbon_feed.cli",      # feed, grid show, grid plot
    "deferral.cli",         # release, deferred
    "governance.cli",       # governance, budget report
    "simulate.cli",         # simulate
)


def build_parser() -> argparse.ArgumentParser:
    """The parser with every component's subcommands."""
    # Given before or after the subcommand alike: argparse copies a subparser's
    # defaults over what the main parser read, so the common options have none
    # (SUPPRESS) and parse() fills them in. --config is a Path everywhere.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                        help="TOML settings file (default: $CARBONGATE_CONFIG)")
    common.add_argument("--log-level", default=argparse.SUPPRESS,
                        help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    parser = argparse.ArgumentParser(
        prog="carbongate",
        description="Carbon-aware admission for Kubernetes.",
        parents=[common],
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # a real import error inside the module
                raise
            continue  # component not installed in this build
        module.register(subparsers, common)
    return parser


COMMON_DEFAULTS = {"config": None, "log_level": "INFO"}


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments, with the common options' defaults where none was given."""
    args = parser.parse_args(argv)
    for name, default in COMMON_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    return args


def configure_logging(level: str) -> None:
    """One log format for every carbongate process (``python -m webhook`` calls it too)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carbongate`` console script."""
    parser = build_parser()
    args = parse(parser, argv)
    configure_logging(str(args.log_level))
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except settings_mod.SettingsError as error:  # a bad --config, flag or variable, in any command
        print(f"carbongate {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
