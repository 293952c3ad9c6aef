"""Which thread decides: a cached decision in the handler's own, only an evaluation in the pool.

The pool exists so that an evaluation overrunning ``decision_deadline_ms``
can finish on its own while the request is admitted unchanged; a decision
the cache holds cannot overrun, and handing it to another thread cost about
0.2 ms of CPU per request (docs/performance.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from carbongate import settings as settings_mod
from tests.webhook import builders
from tests.webhook.stub_engines import StubEngine
from webhook import service, state

NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)


class DecidingEngine(StubEngine):
    """Admits everything, noting which thread evaluated; ``delay_s`` makes an evaluation slow."""

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.delay_s = 0.0

    def evaluate(self, path: str, input: Mapping[str, Any], *, wait_s: float | None = None) -> Any:
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delay_s)
        return {"action": "admit", "mode": "enforce"}


class RefusingPool:
    """A pool that must not be used."""

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the decision pool was used")

    def shutdown(self, **kwargs: Any) -> None:
        pass


@pytest.fixture
def engine() -> DecidingEngine:
    return DecidingEngine()


@pytest.fixture
def worker(engine: DecidingEngine, tmp_path: Path) -> Iterator[service.AdmissionService]:
    settings = settings_mod.load(environ={}, overrides={
        "grid": {"snapshot_path": tmp_path / "grid.json"}, "webhook": {"decision_deadline_ms": 200}})
    built = service.AdmissionService(
        settings=settings, engine=engine,
        namespace_labels=state.NamespaceLabels(reader=lambda namespace: {"carbongate.io/tier": "3"}, ttl_s=30),
        energy_kwh=lambda obj, seconds: 0.0, clock=lambda: NOW)
    yield built
    built.close()


def test_an_evaluation_runs_in_the_pool_and_a_cached_decision_in_the_handler(
        worker: service.AdmissionService, engine: DecidingEngine) -> None:
    status, first = worker.handle(builders.body(builders.review(uid="pod-1")))
    assert status == 200 and "warnings" not in first["response"]
    assert len(engine.threads) == 1 and engine.threads[0].startswith("decide")

    worker._pool = RefusingPool()  # type: ignore[assignment]
    status, second = worker.handle(builders.body(builders.review(uid="pod-2")))  # the fan-out's next pod

    assert status == 200 and second["response"]["uid"] == "pod-2"
    assert "warnings" not in second["response"], second["response"]  # no internal-error fail-open
    assert len(engine.threads) == 1


def test_an_evaluation_past_the_deadline_is_admitted_unchanged_and_finishes_in_the_pool(
        worker: service.AdmissionService, engine: DecidingEngine) -> None:
    engine.delay_s = 2.0
    began = time.monotonic()
    status, document = worker.handle(builders.body(builders.review(uid="slow")))
    answered_s = time.monotonic() - began

    assert status == 200 and document["response"]["allowed"] is True
    assert document["response"]["warnings"] == ["carbongate: admitted unchanged, no decision (deadline)"]
    assert answered_s < 1.5, answered_s  # the 200 ms deadline, not the 2 s evaluation
    assert engine.threads[0].startswith("decide")
