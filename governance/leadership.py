"""Leader election for governance: only the holder of the Lease collects and publishes.

Several governance replicas may run (with PostgreSQL; SQLite allows one).
Each is a candidate for a ``coordination.k8s.io/v1`` Lease, through the
deferral controller's elector (:mod:`deferral.leader`, client-go's rules:
renew every ``lease_renew_s``, stop acting when a renewal is
``renew_deadline_s`` overdue, take over only after the record stayed
unchanged for a whole ``lease_duration_s`` of one's own clock). While this
replica leads, a *term* runs: a fresh collector (list, then watch) and the
publish loop. When it stops leading, the term is stopped before anyone else
can take over (the renew deadline is a third of a lease short of expiry),
and its per-team budget gauges are dropped so that only the leader exports
them. A follower keeps serving ``GET /budgets`` from the shared ledger.

Election is about doing the work once, not about correctness: two replicas
recording at once would still record each run once (the ledger is unique on
the pod UID and the run counters move only on a real insert) and publish the
same budgets from the same ledger.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from deferral import clock as clock_mod

log = logging.getLogger(__name__)

# One term's work: runs until the event is set.
Work = Callable[[threading.Event], None]
MIN_WAIT_S = 0.05


class Candidate(Protocol):
    """What of :class:`deferral.leader.Elector` the loop uses."""

    def tick(self, now: datetime) -> bool:
        """Acquire or renew when due; whether this replica leads."""
        ...

    def next_attempt(self, now: datetime) -> datetime:
        """When ``tick`` will next talk to the API server."""
        ...

    def release(self) -> None:
        """Give the Lease up (on shutdown), so a standby takes over at once."""
        ...


@dataclass
class _Term:
    stop: threading.Event
    thread: threading.Thread


class Leadership:
    """Runs ``work`` while this replica holds the Lease, and stops it when it no longer does.

    Without a candidate (``governance.lease_name`` empty) it simply leads.
    ``on_change(leading)`` is called on every change, after a term has ended.
    """

    def __init__(self, *, candidate: Candidate | None, work: Work, clock: clock_mod.Clock,
                 on_change: Callable[[bool], None] = lambda leading: None,
                 stop_timeout_s: float = 10.0) -> None:
        self._candidate = candidate
        self._work = work
        self._clock = clock
        self._on_change = on_change
        self._stop_timeout_s = stop_timeout_s
        self._leading = False
        self.release_on_exit = True

    @property
    def leading(self) -> bool:
        """Whether a term is running now."""
        return self._leading

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: tick the election, start and end terms (blocks)."""
        if self._candidate is None:
            self._set_leading(True)
            try:
                self._work(stop)
            finally:
                self._set_leading(False)
            return
        term: _Term | None = None
        try:
            while not stop.is_set():
                now = self._clock.now()
                term = self._follow(self._candidate.tick(now), term)
                wait_s = (self._candidate.next_attempt(now) - now).total_seconds()
                self._clock.wait(stop, max(wait_s, MIN_WAIT_S))
        finally:
            if term is not None:
                self._end(term)
            if self.release_on_exit:
                self._candidate.release()

    def _follow(self, leading: bool, term: _Term | None) -> _Term | None:
        """Start a term on winning, end it on losing; restart work that died."""
        if term is not None and not term.thread.is_alive():
            log.error("governance work ended on its own while leading; starting it again")
            self._end(term)
            term = None
        if leading and term is None:
            log.info("leading: collecting runs and publishing budgets")
            return self._begin()
        if not leading and term is not None:
            log.warning("no longer leading: stopped collecting and publishing")
            self._end(term)
            return None
        return term

    def _begin(self) -> _Term:
        stop = threading.Event()
        thread = threading.Thread(target=self._work, args=(stop,), name="governance-term",
                                  daemon=True)
        thread.start()
        self._set_leading(True)
        return _Term(stop=stop, thread=thread)

    def _end(self, term: _Term) -> None:
        term.stop.set()
        term.thread.join(self._stop_timeout_s)
        if term.thread.is_alive():
            log.error("the last term's work did not stop within %.0fs", self._stop_timeout_s)
        self._set_leading(False)

    def _set_leading(self, leading: bool) -> None:
        if leading != self._leading:
            self._leading = leading
            self._on_change(leading)
