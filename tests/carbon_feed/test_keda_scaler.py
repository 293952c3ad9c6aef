"""The KEDA external scaler: a real gRPC client, generated from KEDA's proto, against the running feed.

The client stubs are compiled by ``grpc_tools.protoc`` from
``carbon_feed/externalscaler.proto`` (KEDA's published proto, verbatim) into
this test's temporary directory, separately from the server's own modules.
The feed replays the GB 2023 trace (examples/grid) from 2023-11-22 12:00,
when the grid goes from ~190-215 g/kWh (dirty for a 150 target) to under 150
at 20:00, on a hand-driven clock.

No KEDA or Kubernetes HPA can run here: :func:`keda_hpa_replicas` is a double
written to their published semantics. KEDA (ScaledObject docs): all
triggers inactive with ``minReplicaCount: 0`` scales the target to zero once
``cooldownPeriod`` has passed (each step here is an hour, past the default
300 s); an active trigger scales from zero to ``max(1, minReplicaCount)``
and hands over to the HPA. HPA (algorithm details): for an External metric
with an ``AverageValue`` target (KEDA's default ``metricType``)
``desired = ceil(current * metric / (target * current))`` = ``ceil(metric /
target)``, unchanged while the ratio is within the 0.1 tolerance, and
clamped to [minReplicas, maxReplicas].
"""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from grpc_tools import protoc

from carbon_feed import feed as feed_mod
from carbon_feed import keda, service
from carbongate import clock
from carbongate import settings as settings_mod
from tests.carbon_feed.helpers import EXAMPLES, at

ROOT = Path(__file__).resolve().parents[2]
TRACE = EXAMPLES / "GB_2023_hourly.csv"
REPLAY_START = "2023-11-22T12:00:00Z"
ANCHOR = at("2024-02-05T09:00:00Z")  # the clock's start; trace hour i is ANCHOR + i hours
SEED = {"scalerAddress": "carbongate-feed.carbongate:9103", "metricType": "carbonIntensity",
        "targetValue": "150", "location": "GB", "forecastWindow": "1h"}


@pytest.fixture(scope="module")
def client_modules(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, ModuleType]:
    """``externalscaler_pb2`` and ``_pb2_grpc`` compiled from the proto, as a KEDA-side client would."""
    out = tmp_path_factory.mktemp("keda_client")
    assert protoc.main(["protoc", f"-I{ROOT}", f"--python_out={out}", f"--grpc_python_out={out}",
                        "carbon_feed/externalscaler.proto"]) == 0
    messages = _load("keda_client_pb2", out / "carbon_feed" / "externalscaler_pb2.py")
    stub_source = (out / "carbon_feed" / "externalscaler_pb2_grpc.py").read_text(encoding="utf-8")
    # The generated stub imports its messages by the proto's path; point it at the client's own.
    stub_source = stub_source.replace("from carbon_feed import externalscaler_pb2", "import keda_client_pb2")
    (out / "keda_client_pb2_grpc.py").write_text(stub_source, encoding="utf-8")
    return messages, _load("keda_client_pb2_grpc", out / "keda_client_pb2_grpc.py")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Running:
    feed: feed_mod.Feed
    clock: clock.ManualClock
    stub: Any
    pb2: ModuleType

    def at_hour(self, hour: float, *, refresh: bool = True) -> None:
        self.clock.set(ANCHOR + timedelta(hours=hour))
        if refresh:
            self.feed.refresh()

    def ref(self, **metadata: str) -> Any:
        return self.pb2.ScaledObjectRef(name="batch-worker", namespace="ml-team",
                                        scalerMetadata={**SEED, **metadata})


@pytest.fixture
def running(tmp_path: Path, client_modules: tuple[ModuleType, ModuleType]) -> Iterator[Running]:
    settings = settings_mod.load(environ={}, overrides={
        "feed": {"trace_files": (TRACE,), "trace_clock": REPLAY_START, "state_dir": tmp_path / "state",
                 "keda_bind": "127.0.0.1:0", "ttl_s": 60},
        "grid": {"snapshot_path": tmp_path / "grid.json"},
    })
    manual = clock.ManualClock(ANCHOR)
    feed = service.build_feed(settings, clock=manual)
    feed.refresh()
    server = keda.attach(feed, settings)
    assert server is not None
    server.start()
    pb2, pb2_grpc = client_modules
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Running(feed=feed, clock=manual, stub=pb2_grpc.ExternalScalerStub(channel), pb2=pb2)
    finally:
        channel.close()
        server.stop()


def trace_lca(hours: int) -> list[float]:
    """The trace's life-cycle intensity from REPLAY_START, read here independently of the feed."""
    with TRACE.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    first = next(i for i, row in enumerate(rows) if row["Datetime (UTC)"] == "2023-11-22 12:00:00")
    column = next(c for c in rows[0] if "LCA" in c)
    return [float(row[column]) for row in rows[first:first + hours]]


def keda_hpa_replicas(*, active: bool, metric: float, target: float, current: int,
                      min_replicas: int, max_replicas: int) -> int:
    """KEDA + HPA, double of their published semantics (see the module docstring)."""
    if not active and min_replicas == 0:
        return 0
    if current == 0:
        current = max(1, min_replicas)
    ratio = metric / (target * current)
    desired = current if abs(ratio - 1.0) <= 0.1 else math.ceil(metric / target)
    return max(max(1, min_replicas), min(desired, max_replicas))


def test_the_seed_scaled_object_scales_to_zero_when_dirty_and_to_n_when_clean(running: Running) -> None:
    """The seed's ScaledObject (targetValue 150, forecastWindow 1h) through 16 hours of the trace."""
    ref = running.ref(activeReplicas="10")
    replicas, floor, trace = 0, 2, trace_lca(16)
    seen, seen_floor = [], []
    for hour in range(16):
        running.at_hour(hour)
        active = running.stub.IsActive(ref).result
        spec = running.stub.GetMetricSpec(ref).metricSpecs[0]
        value = running.stub.GetMetrics(running.pb2.GetMetricsRequest(
            scaledObjectRef=ref, metricName=spec.metricName)).metricValues[0]
        assert spec.metricName == "carbon-intensity-gb" and value.metricName == spec.metricName
        replicas = keda_hpa_replicas(active=active, metric=value.metricValueFloat, target=spec.targetSizeFloat,
                                     current=replicas, min_replicas=0, max_replicas=10)
        floor = keda_hpa_replicas(active=active, metric=value.metricValueFloat, target=spec.targetSizeFloat,
                                  current=floor, min_replicas=2, max_replicas=10)
        seen.append(replicas)
        seen_floor.append(floor)

    assert seen == [10 if g <= 150 else 0 for g in trace]
    assert seen[:8] == [0] * 8 and seen[8:] == [10] * 8  # dirty until 20:00, clean after
    # With minReplicaCount 2 the HPA follows the grid between 2 and 10: fewer replicas when dirtier
    # (within its 10 % tolerance of the current count), all 10 once clean.
    for g, count in zip(trace, seen_floor, strict=True):
        wanted = 10 if g <= 150 else math.ceil(10 * 150 / g)
        assert 2 <= count <= 10 and abs(count - wanted) <= max(1, 0.1 * count)
    assert seen_floor[4] == 7  # 16:00, 215.76 g/kWh: ceil(10 x 150 / 215.76)
    assert seen_floor[8:] == [10] * 8


def test_the_forecast_window_judges_by_the_mean_ahead(running: Running) -> None:
    running.at_hour(7)  # 19:00: 176.07 now, then 149.87 and 119.11
    assert running.stub.IsActive(running.ref(forecastWindow="")).result is False
    assert running.stub.IsActive(running.ref(forecastWindow="3h")).result is True  # mean 148.35


def test_stream_is_active_pushes_the_change_when_a_snapshot_crosses_the_threshold(running: Running) -> None:
    running.at_hour(7)
    stream = running.stub.StreamIsActive(running.ref(), timeout=30)
    assert next(stream).result is False  # the state at once

    received: list[bool] = []
    reader = threading.Thread(target=lambda: received.append(next(stream).result))
    reader.start()
    running.at_hour(8)  # 20:00, 149.87: the new snapshot crosses the threshold
    reader.join(10)
    stream.cancel()
    assert received == [True]


def test_stale_data_follows_the_configured_rule(running: Running) -> None:
    running.at_hour(3)  # 15:00, 195 g/kWh: dirty, inactive
    assert running.stub.IsActive(running.ref()).result is False

    running.at_hour(5.5, refresh=False)  # the feed stalls: 2.5 h old, past its hour and the grace
    assert running.stub.IsActive(running.ref()).result is True  # default: active, as admission fails open
    assert running.stub.IsActive(running.ref(whenStale="inactive")).result is False
    metrics = running.stub.GetMetrics(running.pb2.GetMetricsRequest(
        scaledObjectRef=running.ref(whenStale="inactive", activeReplicas="4"), metricName="carbon-intensity-gb"))
    assert metrics.metricValues[0].metricValueFloat == 0


@pytest.mark.parametrize(("metadata", "message"), [
    ({"targetValue": "clean"}, "targetValue must be a positive number"),
    ({"location": "XX"}, "location 'XX' is not served by this feed; it serves GB"),
    ({"forecastWindow": "soon"}, "forecastWindow"),
    ({"metricType": "carbonIndex"}, "metricType must be 'carbonIntensity'"),
    ({"targetvalue": "150"}, "unknown metadata ['targetvalue']"),
])
def test_bad_metadata_is_an_invalid_argument_naming_the_key(
    running: Running, metadata: dict[str, str], message: str
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        running.stub.IsActive(running.ref(**metadata))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in raised.value.details()
    assert raised.value.details().startswith("ml-team/batch-worker: ")
