"""A heap of wake-up times, one live entry per workload.

The controller keeps every deferred workload's next instant of interest
(window opening, release_by minus the lead, next re-check) here and sleeps
until the earliest. Rescheduling a key leaves its old entry in the heap but
marks it stale, which keeps both operations O(log n) without a search.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from datetime import datetime
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class TimerHeap(Generic[K]):
    """Due times per key; ``pop_due`` returns keys whose time has come."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, K]] = []
        self._live: dict[K, tuple[datetime, int]] = {}
        self._counter = itertools.count()

    def schedule(self, key: K, when: datetime) -> None:
        """Wake for ``key`` at ``when``, replacing any earlier schedule of it."""
        entry = (when, next(self._counter))
        self._live[key] = entry
        heapq.heappush(self._heap, (*entry, key))

    def cancel(self, key: K) -> None:
        self._live.pop(key, None)

    def due(self, key: K) -> datetime | None:
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def next_due(self) -> datetime | None:
        """The earliest live due time, dropping stale entries on the way."""
        while self._heap:
            when, seq, key = self._heap[0]
            if self._live.get(key) == (when, seq):
                return when
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: datetime) -> list[K]:
        """Every key due at or before ``now``, earliest first; they are unscheduled."""
        found: list[K] = []
        while (when := self.next_due()) is not None and when <= now:
            _, _seq, key = heapq.heappop(self._heap)
            del self._live[key]
            found.append(key)
        return found

    def __len__(self) -> int:
        return len(self._live)
