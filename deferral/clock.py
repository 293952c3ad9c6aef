"""Time for the controller: the wall clock in production, a hand-driven one in tests.

Every business instant (is the window open, is the deadline near, has the
lease expired) comes from a ``Clock``, and every wait for one goes through
``Clock.wait``, so a test can move time forward by hours and watch the
controller release a workload without sleeping. Network back-off and watch
timeouts are not business time: they use real seconds.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Now, and a wait that ends early when ``wake`` is set."""

    def now(self) -> datetime:
        ...

    def wait(self, wake: threading.Event, timeout_s: float) -> None:
        ...


class SystemClock:
    """The wall clock (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, wake: threading.Event, timeout_s: float) -> None:
        wake.wait(max(timeout_s, 0.0))


class ManualClock:
    """A clock that moves only when told to; waits end when it passes their deadline."""

    def __init__(self, start: datetime, *, tick_s: float = 0.005) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start time")
        self._now = start.astimezone(UTC)
        self._moved = threading.Condition()
        self._tick_s = tick_s

    def now(self) -> datetime:
        with self._moved:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time forward and wake every wait whose deadline has passed."""
        with self._moved:
            self._now += timedelta(seconds=seconds)
            self._moved.notify_all()
            return self._now

    def set(self, when: datetime) -> None:
        with self._moved:
            if when < self._now:
                raise ValueError("time does not go backwards")
            self._now = when
            self._moved.notify_all()

    def wait(self, wake: threading.Event, timeout_s: float) -> None:
        with self._moved:
            until = self._now + timedelta(seconds=max(timeout_s, 0.0))
            while not wake.is_set() and self._now < until:
                self._moved.wait(self._tick_s)


def monotonic() -> float:
    """Real elapsed seconds, for back-off and resync intervals."""
    return time.monotonic()
