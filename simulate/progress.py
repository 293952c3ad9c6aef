"""Progress of a long replay, on stderr, so a year of jobs is not minutes of silence.

A replay of a few hundred jobs ends in seconds and says nothing; past
``QUIET_S`` of wall time it prints a line every ``EVERY_S``: jobs submitted
of all, the simulated date, and the wall time so far. Stdout stays the
result alone (``--json`` pipes cleanly).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from carbongate import timefmt

QUIET_S = 10.0
EVERY_S = 10.0


@dataclass
class Reporter:
    """Called by the replay at each simulated instant; prints when a line is due."""

    label: str = "carbongate replay"
    out: TextIO | None = None
    clock: Callable[[], float] = time.monotonic
    quiet_s: float = QUIET_S
    every_s: float = EVERY_S
    _started: float | None = field(default=None, init=False)
    _next: float = field(default=0.0, init=False)

    def __call__(self, done: int, total: int, now: datetime) -> None:
        wall = self.clock()
        if self._started is None:
            self._started = wall
            self._next = wall + self.quiet_s
        if wall < self._next:
            return
        self._next = wall + self.every_s
        share = 100.0 * done / total if total else 100.0
        print(f"{self.label.strip()}: {done} of {total} jobs submitted ({share:.0f}%), simulated "
              f"{timefmt.format_time(now)}, {wall - self._started:.0f}s so far",
              file=self.out if self.out is not None else sys.stderr, flush=True)
