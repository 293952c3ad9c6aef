"""Decisions reused: the policy's answer to input bytes it has answered before.

A decision is a function of the policy input and of what the engine holds
(the policies with their config, and the data documents), nothing else: the
policies never read the clock. So a decision may be kept, keyed by exactly
the input's bytes (canonical JSON: sorted keys, no spaces) and by the
versions it was decided under, and handed back for the same bytes under the
same versions. A Job or ReplicaSet that creates a hundred identical pods in
the same second then costs one evaluation (``input.now`` is whole seconds,
see ``admission.decision_instant``).

Versions are compared by identity, not by value: the caller passes the very
objects it holds (the policy version string, the grid, budgets and config
documents, the last document the engine accepted). Any of them replaced
starts a new *epoch*: the cache is emptied, so a decision made under an old
grid or an old policy is never answered under a new one. A decision that is
being evaluated while the epoch turns is not stored.

Entries are bounded in number (least recently used go first) and stored as
JSON bytes, so every hit is a private copy no caller can change for the next.
Engine failures are not cached: the next request asks again.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prometheus_client import Counter

LOOKUPS = Counter(
    "carbongate_decision_cache_lookups_total",
    "Admission decisions asked of the decision cache, by result (hit: no evaluation)",
    ["result"],
)
EPOCHS = Counter(
    "carbongate_decision_cache_invalidations_total",
    "Times the decision cache was emptied because the policy or a data document changed",
)

Evaluate = Callable[[Mapping[str, Any]], Any]
# How long a request waits for another's evaluation of the same input; the decision
# deadline (webhook.decision_deadline_ms) still bounds the request as a whole.
PENDING_WAIT_S = 0.25


def canonical(policy_input: Mapping[str, Any]) -> bytes:
    """The input's canonical JSON bytes: equal inputs, equal bytes (and the reverse)."""
    return json.dumps(policy_input, sort_keys=True, separators=(",", ":"), allow_nan=False,
                      ensure_ascii=False).encode()


class DecisionCache:
    """A bounded, thread-safe map from (versions, input bytes) to a decision."""

    def __init__(self, *, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be 0 (off) or more, not {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()
        self._versions: tuple[Any, ...] | None = None
        self._epoch = 0
        self._lock = threading.Lock()
        # Inputs being evaluated now: a fan-out's pods arrive together, and all but
        # the first wait for its decision rather than evaluate the same bytes again.
        self._pending: dict[bytes, threading.Event] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def decide(self, versions: Sequence[Any], policy_input: Mapping[str, Any], evaluate: Evaluate) -> Any:
        """The cached decision for this input under these versions, else ``evaluate``'s (then kept)."""
        if not self.enabled:
            return evaluate(policy_input)
        try:
            key = canonical(policy_input)
        except (TypeError, ValueError):
            LOOKUPS.labels(result="uncacheable").inc()
            return evaluate(policy_input)
        with self._lock:
            epoch = self._enter(tuple(versions))
            stored = self._entries.get(key)
            if stored is not None:
                self._entries.move_to_end(key)
            pending = self._pending.get(key) if stored is None else None
            if stored is None and pending is None:
                self._pending[key] = threading.Event()
        if pending is not None:
            # Another thread is evaluating these bytes: wait for it (an engine call's time),
            # then take its decision, or evaluate alone if it failed or the epoch turned.
            pending.wait(PENDING_WAIT_S)
            with self._lock:
                stored = self._entries.get(key) if self._epoch == epoch else None
        if stored is not None:
            LOOKUPS.labels(result="hit").inc()
            return json.loads(stored)
        LOOKUPS.labels(result="miss").inc()
        try:
            decision = evaluate(policy_input)
            self._store(epoch, key, decision)
        finally:
            if pending is None:
                with self._lock:
                    done = self._pending.pop(key, None)
                if done is not None:
                    done.set()
        return decision

    def _enter(self, versions: tuple[Any, ...]) -> int:
        """The epoch of these versions; a new, empty one when any of them changed (lock held)."""
        current = self._versions
        if current is None or len(current) != len(versions) or any(
                a is not b and not (isinstance(a, str) and a == b)
                for a, b in zip(current, versions, strict=True)):
            if current is not None:
                EPOCHS.inc()
            self._entries.clear()
            self._versions = versions
            self._epoch += 1
        return self._epoch

    def _store(self, epoch: int, key: bytes, decision: Any) -> None:
        try:
            stored = json.dumps(decision, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError):
            return
        with self._lock:
            if epoch != self._epoch:
                return  # decided while the policy or the data changed: no longer current
            self._entries[key] = stored
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
