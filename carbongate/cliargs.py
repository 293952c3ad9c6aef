"""Argument types and output helpers every subcommand shares, so they all behave alike.

kubectl's manners, which a platform engineer brings along: bad input is one
line naming the flag and what it accepts, and exit code 2; times are RFC 3339
or relative to now (``now-2h``); ``-o json`` and friends print what a script
can read.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from carbongate import clock, timefmt


def instant(text: str) -> datetime:
    """argparse ``type=`` for an instant: RFC 3339 or ``now``, ``now-2h``, ``now+30m``.

    A bad value becomes argparse's usage error (exit 2) with timefmt's message.
    """
    try:
        return timefmt.parse_instant(text, now=clock.utc_now().replace(microsecond=0))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def label(text: str) -> tuple[str, str]:
    """argparse ``type=`` for ``KEY=VALUE`` (a label, as ``kubectl label`` takes it)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value
