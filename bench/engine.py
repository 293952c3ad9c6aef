"""Where a decision's CPU goes: the embedded engine's fixed cost, its input, the policy, Python.

``bench/admission.py`` measures the webhook from outside; this one takes the
same real Pod reviews through the same pieces in-process, one by one, and
prints CPU milliseconds per call (the minimum over several repeats, so other
processes on the machine disturb it less than wall-clock figures):

* ``engine, no input``: a constant rule evaluated with no input: the cost of
  one call into the Go engine and back (ctypes, JSON envelope, prepared query);
* ``engine, decision input``: the same rule with the webhook's real decision
  input: what converting the input into the engine's values costs;
* ``engine, decision``: ``data.carbongate.admission.decision`` itself;
* ``engine, decision, input.object``: the same with the object passed whole
  (``webhook.policy_input_object = true``): what that opt-in costs;
* ``webhook, request, cache miss``: ``AdmissionService.handle`` (parse, plan,
  input, engine, patch, metrics) with the decision cache off: compare with
  ``engine, decision`` to see what the Python side adds;
* ``webhook, request, cache hit``: the same review again within its second:
  the decision comes from ``webhook.decision_cache``;
* ``webhook, N threads, distinct misses``: distinct reviews (every decision a
  miss) from ``webhook.threads`` threads at once, as a gunicorn worker's
  threads call it: CPU per request and requests/s, so the cost of concurrency
  in one worker (the GIL, thread hand-offs, the engine's queue) shows beside
  the one-at-a-time figures (docs/performance.md, "Sizing").

    .venv/bin/python bench/engine.py [--repeats 7] [--calls 100] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.admission import bodies, distinct_bodies  # noqa: E402  (after the sys.path line: runs as a script)
from carbon_feed import traces  # noqa: E402
from carbongate import clock  # noqa: E402
from carbongate import settings as settings_mod  # noqa: E402
from webhook import reviews  # noqa: E402

DEMO_GRID = sorted((ROOT / "examples" / "grid").glob("*.csv"))
NAMESPACES = ROOT / "examples" / "namespaces.yaml"
DECISION = "carbongate/admission/decision"
CONSTANT = "carbongate/config/default_tier"


def cpu_ms_per_call(call: Callable[[], object], *, calls: int, repeats: int) -> float:
    """The lowest mean CPU time of ``calls`` calls over ``repeats`` tries, in ms."""
    call()
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(calls):
            call()
        best = min(best, (time.process_time() - started) / calls * 1000)
    return best


def write_grid(directory: Path, settings: settings_mod.Settings) -> Path:
    """The snapshot the feed would publish now from the bundled demo traces."""
    document = traces.snapshot_from_traces(
        DEMO_GRID, now=clock.utc_now(), horizon_h=settings.grid.forecast_horizon_h,
        durations_min=settings.grid.window_durations_min, grace_s=settings.grid.stale_grace_s)
    path = directory / "grid-snapshot.json"
    path.write_text(json.dumps(document))
    return path


def measure(directory: Path, *, calls: int, repeats: int) -> dict[str, Any]:
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(directory))  # webhook.metrics needs one
    from webhook import app as app_mod  # after the variable: its metrics read it at import

    base = settings_mod.load(environ={})
    settings = settings_mod.load(environ={}, overrides={
        "grid": {"snapshot_path": write_grid(directory, base)},
        "governance": {"budgets_snapshot_path": directory / "budgets.json"},
        # make run's namespaces (ml-team: tier 3, enforce): decisions take the enforced path.
        "webhook": {"namespace_labels_source": "file", "namespace_labels_file": NAMESPACES}})
    service = app_mod.create_app(settings, start_background=False).extensions["carbongate"]
    payloads = bodies()
    service.decisions.max_entries = 0  # every call a miss, until the cache-hit row
    inputs = decision_inputs(service, payloads)
    service.settings = dataclasses.replace(service.settings, webhook=dataclasses.replace(
        service.settings.webhook, policy_input_object=True))
    whole_inputs = decision_inputs(service, payloads)
    service.settings = settings
    engine = service.engine
    rows = {
        "engine, no input": [cpu_ms_per_call(lambda: engine.evaluate(CONSTANT, {}), calls=calls, repeats=repeats)],
        "engine, decision input": [cpu_ms_per_call(functools.partial(engine.evaluate, CONSTANT, i), calls=calls,
                                                   repeats=repeats) for i in inputs],
        "engine, decision": [cpu_ms_per_call(functools.partial(engine.evaluate, DECISION, i), calls=calls,
                                             repeats=repeats) for i in inputs],
        "engine, decision, input.object": [cpu_ms_per_call(functools.partial(engine.evaluate, DECISION, i), calls=calls,
                                                           repeats=repeats) for i in whole_inputs],
        "webhook, request, cache miss": [cpu_ms_per_call(functools.partial(service.handle, b), calls=calls,
                                                         repeats=repeats) for b in payloads],
    }
    service.decisions.max_entries = settings.webhook.decision_cache_entries
    rows["webhook, request, cache hit"] = [cpu_ms_per_call(functools.partial(service.handle, b), calls=calls,
                                                           repeats=repeats) for b in payloads]
    concurrent = concurrent_misses(service, threads=settings.webhook.threads, requests=calls * 16)
    service.close()
    return {
        "reviews": len(payloads),
        "concurrent": concurrent,
        "input_bytes": [len(json.dumps(i)) for i in inputs],
        "input_bytes_with_object": [len(json.dumps(i)) for i in whole_inputs],
        "cpu_ms": {name: summary(values) for name, values in rows.items()},
    }


def concurrent_misses(service: Any, *, threads: int, requests: int) -> dict[str, float]:
    """CPU ms per request and requests/s for distinct reviews handled by ``threads`` threads at once."""
    payloads = distinct_bodies(requests + 64)
    for body in payloads[:64]:  # warm: plans for this second, the engine's prepared query
        service.handle(body)
    share = [payloads[64 + i::threads] for i in range(threads)]
    workers = [threading.Thread(target=lambda part=part: [service.handle(b) for b in part]) for part in share]
    cpu, wall = time.process_time(), time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"threads": threads, "cpu_ms_per_request": round(cpu / requests * 1000, 3),
            "requests_per_s": round(requests / wall)}


def decision_inputs(service: Any, payloads: list[bytes]) -> list[Mapping[str, Any]]:
    """The decision inputs the webhook builds for these reviews (captured on their way to the engine)."""
    captured: list[Mapping[str, Any]] = []
    evaluate = service._evaluate

    def capture(policy_input: Mapping[str, Any], **keywords: Any) -> Any:
        captured.append(json.loads(json.dumps(policy_input)))
        return evaluate(policy_input, **keywords)

    service._evaluate = capture
    for body in payloads:
        service._review(reviews.parse(body), None)
    service._evaluate = evaluate
    return captured


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"min": round(ordered[0], 3), "median": round(ordered[len(ordered) // 2], 3),
            "max": round(ordered[-1], 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cg-bench-engine-") as tmp:
        result = measure(Path(tmp), calls=arguments.calls, repeats=arguments.repeats)
    if arguments.json:
        print(json.dumps(result, indent=2))
        return 0
    sizes = result["input_bytes"]
    whole = result["input_bytes_with_object"]
    print(f"embedded engine, {result['reviews']} real Pod reviews, decision input {min(sizes)}-{max(sizes)} bytes "
          f"({min(whole)}-{max(whole)} with input.object)")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; CPU ms per call, min over repeats\n")
    print(f"{'':<32} {'min':>7} {'median':>7} {'max':>7}")
    for name, row in result["cpu_ms"].items():
        print(f"{name:<32} {row['min']:>7.3f} {row['median']:>7.3f} {row['max']:>7.3f}")
    concurrent = result["concurrent"]
    print(f"\nwebhook, {concurrent['threads']} threads, distinct misses: {concurrent['cpu_ms_per_request']:.3f} "
          f"CPU ms per request, {concurrent['requests_per_s']} requests/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
