"""Remember readings, pace the providers, and survive a restart.

Three small pieces, all driven by the feed's clock:

* :class:`TtlCache` answers from memory while a provider's reading is younger
  than the TTL (default 300 s), so a provider is never polled faster than that.
* :class:`PollGate` decides when a provider may be asked again after a
  failure: exponential backoff with jitter (so many feeds do not retry in
  step), never sooner than the TTL, and never sooner than a ``429``'s
  ``Retry-After``.
* :class:`LastKnownGood` keeps the newest good reading per region on disk
  (``feed.state_dir``), so a feed that restarts while its providers are down
  still publishes, marked ``last-known-good:`` and stale once too old.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from carbon_feed import errors, model
from carbongate import files

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (provider name, region)
LKG_FILE = "last-known-good.json"


class TtlCache:
    """The newest reading per (provider, region), valid for ``ttl_s`` after it was fetched."""

    def __init__(self, *, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[Key, tuple[model.Reading, datetime]] = {}
        self._lock = threading.Lock()

    def put(self, key: Key, reading: model.Reading, *, now: datetime) -> None:
        with self._lock:
            self._entries[key] = (reading, now)

    def fresh(self, key: Key, *, now: datetime) -> model.Reading | None:
        """The cached reading if fetched less than ``ttl_s`` ago (and not in the future)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        reading, stored = entry
        return reading if stored <= now < stored + timedelta(seconds=self.ttl_s) else None


@dataclass
class _GateState:
    next_poll: datetime
    failures: int = 0


class PollGate:
    """When each (provider, region) may be polled next."""

    def __init__(self, *, ttl_s: float, backoff_max_s: float, rng: random.Random | None = None) -> None:
        self.ttl_s = ttl_s
        self.backoff_max_s = max(backoff_max_s, ttl_s)
        self._rng = rng or random.Random()
        self._state: dict[Key, _GateState] = {}
        self._lock = threading.Lock()

    def may_poll(self, key: Key, *, now: datetime) -> bool:
        with self._lock:
            state = self._state.get(key)
        return state is None or now >= state.next_poll

    def succeeded(self, key: Key, *, now: datetime) -> None:
        with self._lock:
            self._state[key] = _GateState(next_poll=now + timedelta(seconds=self.ttl_s))

    def failed(self, key: Key, error: errors.ProviderError, *, now: datetime) -> float:
        """Record a failure; returns the seconds until the next poll."""
        with self._lock:
            state = self._state.setdefault(key, _GateState(next_poll=now))
            state.failures += 1
            delay = self.delay_s(state.failures)
            if isinstance(error, errors.RateLimited) and error.retry_after_s is not None:
                delay = max(delay, error.retry_after_s)
            state.next_poll = now + timedelta(seconds=delay)
            return delay

    def delay_s(self, failures: int) -> float:
        """TTL doubled per consecutive failure, capped, plus up to half again of jitter."""
        base = min(self.backoff_max_s, self.ttl_s * 2.0 ** min(failures - 1, 30))
        return base + self._rng.uniform(0.0, base / 2)


class LastKnownGood:
    """The newest good reading per region, mirrored to ``state_dir/last-known-good.json``."""

    def __init__(self, *, state_dir: Path) -> None:
        self.path = state_dir / LKG_FILE
        self._lock = threading.Lock()
        self._readings: dict[str, model.Reading] = self._load()

    def get(self, region: str) -> model.Reading | None:
        with self._lock:
            return self._readings.get(region)

    def put(self, reading: model.Reading) -> None:
        """Keep ``reading`` unless an equally new one is already kept; write through to disk."""
        with self._lock:
            kept = self._readings.get(reading.region)
            if kept is not None and kept.observed_at > reading.observed_at:
                return
            if kept == reading:
                return
            self._readings[reading.region] = reading
            document = {region: model.to_document(r) for region, r in self._readings.items()}
        try:
            files.write_json(self.path, {"schema": 1, "readings": document})
        except OSError as error:
            log.warning("cannot write last-known-good cache %s: %s", self.path, error)

    def _load(self) -> dict[str, model.Reading]:
        """Readings from an earlier run; a damaged file is reported and ignored, never fatal."""
        try:
            document = files.read_json(self.path)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            log.warning("ignoring unreadable last-known-good cache %s: %s", self.path, error)
            return {}
        readings: dict[str, model.Reading] = {}
        stored = document.get("readings") if isinstance(document, Mapping) else None
        for region, item in (stored or {}).items():
            try:
                readings[str(region)] = model.from_document(item)
            except errors.ProviderError as error:
                log.warning("ignoring stored reading for %s in %s: %s", region, self.path, error)
        if readings:
            log.info("resuming from last-known-good readings for %s", ", ".join(sorted(readings)))
        return readings
