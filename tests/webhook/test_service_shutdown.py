"""A review arriving while the worker's interpreter exits is still answered, never a 500.

A stopping gunicorn worker can still be finishing a request when the
interpreter starts exiting, and from then on every ThreadPoolExecutor
refuses work (tests/reliability/test_faults_gunicorn.py found it as a 500).
Here the decision pool is shut down by hand, which refuses work the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from carbongate import settings as settings_mod
from tests.webhook import builders
from tests.webhook.stub_engines import StubEngine
from webhook import service, state


class CountingEngine(StubEngine):
    """An engine whose every decision is undefined ("no decision": allowed unchanged)."""

    def __init__(self) -> None:
        self.evaluations = 0

    def evaluate(self, path: str, input: Mapping[str, Any], *, wait_s: float | None = None) -> Any | None:
        self.evaluations += 1
        return None


@pytest.fixture
def engine() -> CountingEngine:
    return CountingEngine()


@pytest.fixture
def worker(engine: CountingEngine, tmp_path: Path) -> Iterator[service.AdmissionService]:
    settings = settings_mod.load(environ={}, overrides={"grid": {"snapshot_path": tmp_path / "grid.json"}})
    built = service.AdmissionService(
        settings=settings, engine=engine,
        namespace_labels=state.NamespaceLabels(reader=lambda namespace: {}, ttl_s=30),
        energy_kwh=lambda obj, replicas: 0.0)
    yield built
    built.close()


def test_a_review_after_the_decision_pool_shut_down_is_decided_in_the_handler_thread(
        worker: service.AdmissionService, engine: CountingEngine) -> None:
    worker.close()  # shuts the decision pool down, as interpreter exit does

    status, document = worker.handle(builders.body(builders.review(uid="late")))

    assert status == 200
    assert document["response"]["uid"] == "late" and document["response"]["allowed"] is True
    assert "warnings" not in document["response"]  # "no decision", not a fail-open
    assert engine.evaluations == 1
