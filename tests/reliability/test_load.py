"""Load and soak: the real webhook holds twice the benchmark's sustained rate without error or leak.

The server is started as ``make run`` starts it (gunicorn, asgi workers,
TLS, the embedded engine and the real policies), over a grid snapshot that is
replaced while the load runs, so every worker keeps reloading data and
rebuilding its engines as it would under a live feed. The load comes from
second processes on 127.0.0.1 (``load.hold``). Every request must be
answered 200 with a review, no worker may die or be replaced, and no worker's
RSS may grow by more than 10 % from the end of the warm-up to the end
(the floor of the first and last fifth of the samples: ``load.growth``) in
the soak. The short run allows 25 %: over 20 s the floor still moves by
10-15 % with the timing of engine rebuilds and garbage collection, so there
it only catches a gross leak; the soak is the memory test.

Latency is reported, not asserted: on a shared 2-core machine the load
generators take CPU from the server, and ``make test`` runs other tests
beside this one. The figures of a run are printed (``make soak`` shows them;
docs/reliability.md records one).

- ``test_a_short_load...`` runs in ``make test``: 20 s after a 10 s warm-up (the grid replaced every 5 s).
- ``test_the_soak...`` is marked ``soak`` and runs only in ``make soak``: ten minutes after
  a one-minute warm-up (the grid replaced every 30 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability import load, servers
from tests.support import webhook_server

pytestmark = pytest.mark.xdist_group("reliability")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[webhook_server.RunningWebhook]:
    with servers.webhook(tmp_path) as running:
        yield running


def assert_held(held: load.Held, *, max_growth: float) -> None:
    """No error, every request answered, the same workers throughout, memory flat."""
    assert held.stats is not None
    print(f"\n{held.report()}")
    assert held.warm_up_errors == 0, held.report()
    assert held.stats.errors == 0, held.report()
    assert held.answered == held.stats.sent, held.report()
    assert held.workers_after == held.workers_before, "a worker died or was replaced under load"
    # A decision abandoned at the 250 ms deadline is still a correct, timely answer
    # (allowed unchanged, counted); anything else failing open under load is a bug.
    assert set(held.fail_open) <= {"deadline"}, held.fail_open
    assert held.reloads > 0, "the grid was never reloaded during the run"
    grown = {pid: f"{growth:+.1%}" for pid, growth in held.growth().items() if growth > max_growth}
    assert not grown, f"RSS grew beyond {max_growth:.0%}: {grown}; {held.report()}"


@pytest.mark.timeout(load.SHORT_SECONDS * 3 + 240)
def test_a_short_load_at_twice_the_benchmark_rate_is_answered_without_error_or_growth(
        server: webhook_server.RunningWebhook) -> None:
    with load.grid_replaced(server.directory / "grid.json", every_s=5):
        held = load.hold(server, rate=load.SOAK_RATE, seconds=load.SHORT_SECONDS, warm_up_s=10, sample_every_s=1)
    assert_held(held, max_growth=load.MAX_RSS_GROWTH_SHORT)


@pytest.mark.soak
@pytest.mark.timeout(load.SOAK_SECONDS * 3 + 600)
def test_the_soak_at_twice_the_benchmark_rate_for_ten_minutes_keeps_memory_flat(
        server: webhook_server.RunningWebhook) -> None:
    with load.grid_replaced(server.directory / "grid.json", every_s=30):
        held = load.hold(server, rate=load.SOAK_RATE, seconds=load.SOAK_SECONDS, warm_up_s=60, sample_every_s=5)
    assert_held(held, max_growth=load.MAX_RSS_GROWTH)
