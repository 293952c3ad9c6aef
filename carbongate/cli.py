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
import importlib.metadata
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from carbongate import __version__
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


# The embedded OPA engine's import name and distribution. It declares Python
# >= 3.14, so pip installs it with carbongate there; on 3.11-3.13 it must be
# installed on its own with --ignore-requires-python (it works there).
ENGINE_MODULE = "opa_bindings"
ENGINE_MISSING = (
    "carbongate: the embedded OPA engine (opa-golib-python-bindings) is not installed. "
    "pip installs it with carbongate on Python 3.14+; on 3.11-3.13 run "
    "`pip install --ignore-requires-python opa-golib-python-bindings==0.4.4` (it works there)."
)


class Parser(argparse.ArgumentParser):
    """argparse with kubectl's manners: one line naming the problem, a pointer to --help, exit 2.

    Subcommands' parsers are of this class too (``add_subparsers`` uses the
    parent's class), so every command's bad input looks the same.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\nSee '{self.prog} --help'.\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser with every component's subcommands."""
    # Given before or after the subcommand alike: argparse copies a subparser's
    # defaults over what the main parser read, so the common options have none
    # (SUPPRESS) and parse() fills them in. --config is a Path everywhere.
    common = Parser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                        help="TOML settings file (default: $CARBONGATE_CONFIG)")
    common.add_argument("--log-level", default=argparse.SUPPRESS,
                        help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    parser = Parser(
        prog="carbongate",
        description="Carbon-aware admission for Kubernetes.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"carbongate {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    without_engine: list[str] = []
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name == ENGINE_MODULE:  # --help, --version and the rest still work
                without_engine.append(name.split(".")[0])
                continue
            if error.name != name:  # a real import error inside the module
                raise
            continue  # component not installed in this build
        module.register(subparsers, common)
    _add_completion(subparsers, common)
    if without_engine:
        parser.epilog = f"{ENGINE_MISSING} Until then the commands of {', '.join(without_engine)} are missing."
    return parser


def _add_completion(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """``carbongate completion bash``: the shell completion script, made from this parser (shtab)."""
    completion = subparsers.add_parser(
        "completion", parents=[common], help="print a shell completion script",
        description="Print the completion script for a shell. Bash: "
                    "source <(carbongate completion bash), or save it under "
                    "/etc/bash_completion.d/. Zsh: carbongate completion zsh > \"${fpath[1]}/_carbongate\".",
    )
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    completion.set_defaults(handler=_completion)


def _completion(args: argparse.Namespace) -> int:
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


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


def version() -> str:
    """The installed distribution's version (the wheel's metadata), else the source tree's."""
    try:
        return importlib.metadata.version("carbongate")
    except importlib.metadata.PackageNotFoundError:
        return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carbongate`` console script."""
    parser = build_parser()
    try:
        args = parse(parser, argv)
    except SystemExit as exit:
        if exit.code == 2 and parser.epilog and ENGINE_MISSING in parser.epilog:
            print(parser.epilog, file=sys.stderr)  # the command asked for may be one of them
        raise
    configure_logging(str(args.log_level))
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        code = int(handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except settings_mod.SettingsError as error:  # a bad --config, flag or variable, in any command
        print(f"carbongate {args.command}: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `carbongate review ... | head -3`: the reader left, which is no error of ours. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a writer ended by SIGPIPE (128 + 13)


if __name__ == "__main__":
    sys.exit(main())
