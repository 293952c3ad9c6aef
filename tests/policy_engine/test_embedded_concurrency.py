"""Threads evaluating while data and policies are swapped underneath them."""

from __future__ import annotations

import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

from policy_engine import embedded
from tests.policy_engine.conftest import DECISION, decide, grid, write

THREADS = 8  # as many as a gthread worker runs


def versioned_grid(n: int) -> dict[str, Any]:
    """Version n: GB at n g/kWh plus a region named after n, so a result shows its version."""
    return grid(GB=float(n), **{f"V{n}": 1.0})


def consistent(decision: dict[str, Any]) -> bool:
    """Everything in one decision comes from one data version."""
    n = int(decision["g_per_kwh"])
    return bool(decision["known_regions"] == ["GB", f"V{n}"])


def test_evaluations_during_data_and_policy_swaps_never_fail_nor_mix_versions(
        engine: embedded.EmbeddedEngine, policy_dir: Path) -> None:
    engine.put_data("grid", versioned_grid(0))
    stop = threading.Event()

    def evaluate_until_stopped() -> list[dict[str, Any]]:
        seen = []
        while not stop.is_set():
            seen.append(decide(engine, {"kind": "Pod"}))
        return seen

    with futures.ThreadPoolExecutor(THREADS) as pool:
        readers = [pool.submit(evaluate_until_stopped) for _ in range(THREADS)]
        for n in range(1, 41):
            engine.put_data("grid", versioned_grid(n))
            if n % 10 == 0:
                engine.reload_policies()
        stop.set()
        results = [decision for reader in readers for decision in reader.result()]

    assert len(results) > 100
    assert all(consistent(decision) for decision in results)
    assert len({int(decision["g_per_kwh"]) for decision in results}) > 3  # read across swaps
    assert engine.open_engines == 2


def test_an_evaluation_in_flight_finishes_on_the_version_it_started_on(tmp_path: Path) -> None:
    write(tmp_path / "carbongate/admission/decision.rego",
          "package carbongate.admission\n\n"
          "decision := {\"version\": data.carbongate.grid.version,\n"
          "\t\"work\": count([x | some x in numbers.range(1, input.n)])}\n")
    slow = embedded.EmbeddedEngine(policy_dir=tmp_path, pool_size=2)
    slow.put_data("grid", {"version": 1})
    started = time.monotonic()

    with futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(slow.evaluate, DECISION, {"n": 400_000})
        time.sleep(0.05)
        slow.put_data("grid", {"version": 2})  # must not wait for the evaluation
        swapped_after = time.monotonic() - started
        retired_still_open = slow.open_engines
        old_result = in_flight.result()
    evaluation_took = time.monotonic() - started

    assert old_result == {"version": 1, "work": 400_000}
    assert swapped_after < evaluation_took
    assert retired_still_open == 4  # the old pool waits for its last reader ...
    assert slow.open_engines == 2   # ... and is closed once it has left
    assert slow.evaluate(DECISION, {"n": 1}) == {"version": 2, "work": 1}
    slow.close()


def test_more_threads_than_engines_wait_their_turn(policy_dir: Path) -> None:
    single = embedded.EmbeddedEngine(policy_dir=policy_dir, pool_size=1)
    single.put_data("grid", grid(GB=100.0))

    with futures.ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: decide(single, {"kind": "Pod"}),
                                range(200)))

    assert all(result["action"] == "admit" for result in results)
    single.close()
