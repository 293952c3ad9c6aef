"""Where every component gets "now" from: the wall, or a clock a test or the simulator drives.

Every business instant (a cache's age, whether a window is open, a deadline,
a lease's expiry, a certificate's remaining life) comes from a :class:`Clock`,
and every wait for one goes through ``Clock.wait``, so a test can move time
forward by hours and watch the feed fall back or the controller release a
workload without sleeping. Network back-off and watch timeouts are not
business time: they use :func:`monotonic` (real seconds).

Components that only need "now" take a :data:`Now` callable (``clock.now`` or
:func:`utc_now`); there is one clock implementation behind both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

Now = Callable[[], datetime]
"""A function returning the current instant (aware, UTC): ``SystemClock().now`` or a test's."""


class Clock(Protocol):
    """Now, and a wait that ends early when ``wake`` is set."""

    def now(self) -> datetime:
        """The current instant (aware, UTC)."""
        ...

    def wait(self, wake: threading.Event, timeout_s: float) -> None:
        """Return after ``timeout_s`` of this clock's time, or sooner when ``wake`` is set."""
        ...


def utc_now() -> datetime:
    """The wall clock's current instant, aware, in UTC (the default :data:`Now`)."""
    return datetime.now(UTC)


class SystemClock:
    """The wall clock (UTC)."""

    def now(self) -> datetime:
        return utc_now()

    def wait(self, wake: threading.Event, timeout_s: float) -> None:
        wake.wait(max(timeout_s, 0.0))


class ManualClock:
    """A clock that moves only when told to (thread-safe); waits end when it passes their deadline."""

    def __init__(self, start: datetime, *, tick_s: float = 0.005) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._moved = threading.Condition()
        self._tick_s = tick_s

    def now(self) -> datetime:
        with self._moved:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time forward, wake every wait whose deadline has passed, return the new now."""
        with self._moved:
            self._now += timedelta(seconds=seconds)
            self._moved.notify_all()
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when``, forwards or backwards (tests of clock skew need both)."""
        if when.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        with self._moved:
            self._now = when.astimezone(UTC)
            self._moved.notify_all()

    def wait(self, wake: threading.Event, timeout_s: float) -> None:
        with self._moved:
            until = self._now + timedelta(seconds=max(timeout_s, 0.0))
            while not wake.is_set() and self._now < until:
                self._moved.wait(self._tick_s)


def monotonic() -> float:
    """Real elapsed seconds, for back-off and resync intervals (never business time)."""
    return time.monotonic()
