"""Where the feed gets "now" from: the wall, or a clock a test or the simulator sets.

Everything time-dependent in the feed (TTL, backoff, data age, the trace
replay position) asks a :class:`Clock`, never ``datetime.now`` directly, so
a test can step through an hour of provider failures in microseconds and
the simulator can replay a year.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of aware UTC datetimes."""

    def now(self) -> datetime:
        """The current instant (aware, UTC)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (thread-safe)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (forwards or backwards: tests of clock skew need both)."""
        with self._lock:
            self._now = when.astimezone(UTC)

    def advance(self, seconds: float) -> datetime:
        """Move forward and return the new now."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now
