"""Publishing the snapshot: an atomic file, the embedded OPA engine, an OPA server over REST.

The embedded engine is the real one (``opa_bindings`` through
``policy_engine``); the OPA server is ``tests/support/opa_rest_double.py``,
which answers the Data API with OPA's status codes, since no OPA binary can
run here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import policy_engine
from carbon_feed import metrics, publisher, service
from carbongate import clock, files
from carbongate import settings as settings_mod
from planner import snapshot as contract
from tests.carbon_feed.helpers import EXAMPLES, at, sample
from tests.support import opa_rest_double

NOW = at("2026-11-22T12:07:00Z")


@pytest.fixture(scope="module")
def grid() -> contract.GridSnapshot:
    from carbon_feed import traces

    document = traces.snapshot_from_traces(traces.demo_files(EXAMPLES), now=NOW, horizon_h=48,
                                           durations_min=(60, 240), grace_s=900)
    return contract.check_snapshot(document)


@pytest.fixture
def opa() -> Iterator[opa_rest_double.OpaRestDouble]:
    with opa_rest_double.OpaRestDouble() as double:
        yield double


def settings_for(tmp_path: Path, **sections: Any) -> settings_mod.Settings:
    return settings_mod.load(environ={}, overrides={
        "grid": {"snapshot_path": tmp_path / "grid.json"}, "feed": {"state_dir": tmp_path / "state"},
        **sections,
    })


def test_the_snapshot_file_is_replaced_whole(tmp_path: Path, grid: contract.GridSnapshot) -> None:
    target = tmp_path / "out" / "grid.json"
    target.parent.mkdir()
    target.write_text("old", encoding="utf-8")

    publisher.SnapshotFile(target).put(grid)

    assert json.loads(target.read_text(encoding="utf-8")) == grid
    assert [p.name for p in target.parent.iterdir()] == ["grid.json"]  # no temporary left behind


def test_readers_never_see_a_half_written_snapshot(tmp_path: Path, grid: contract.GridSnapshot) -> None:
    target = tmp_path / "grid.json"
    publisher.SnapshotFile(target).put(grid)
    small: contract.GridSnapshot = {"schema": 1, "generated_at": "2026-11-22T12:00:00Z", "regions": {}}
    stop, torn = threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            try:
                files.read_json(target)
            except ValueError:
                torn.append(1)

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(60):
        publisher.SnapshotFile(target).put(grid if i % 2 else small)
    stop.set()
    reader.join()

    assert torn == []


def test_a_snapshot_that_cannot_be_written_is_a_publish_error(tmp_path: Path, grid: contract.GridSnapshot) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("", encoding="utf-8")

    with pytest.raises(publisher.PublishError, match="cannot write snapshot"):
        publisher.SnapshotFile(blocked / "grid.json").put(grid)


def test_the_embedded_engine_holds_the_grid_as_data_carbongate_grid(
    tmp_path: Path, grid: contract.GridSnapshot
) -> None:
    engine = policy_engine.build(settings_mod.EngineSettings())
    try:
        assert not engine.ready
        feed = service.build_feed(settings_for(tmp_path), clock=clock.ManualClock(NOW), engines=[engine])

        published = feed.refresh()

        assert engine.ready
        assert engine.evaluate("carbongate/grid", {}) == json.loads(json.dumps(published))
        assert engine.evaluate("carbongate/grid/regions/GB/best_windows", {}) == published["regions"]["GB"][
            "best_windows"]
    finally:
        engine.close()


def test_the_feed_puts_the_grid_into_an_opa_server_under_its_own_root(
    tmp_path: Path, opa: opa_rest_double.OpaRestDouble
) -> None:
    settings = settings_for(tmp_path, engine={"opa_url": opa.url}, feed={"state_dir": tmp_path / "state",
                                                                         "publish_to": "opa"})
    feed = service.build_feed(settings, clock=clock.ManualClock(NOW), environ={"CARBONGATE_OPA_TOKEN": "opa-t"})

    published = feed.refresh()

    assert opa.data() == {"carbongate": {"grid": json.loads(json.dumps(published))}}
    puts = [s for s in opa.seen if s.method == "PUT"]
    assert [(s.path, s.authorization) for s in puts] == [("/v1/data/carbongate/grid", "Bearer opa-t")]
    assert contract.load_snapshot(tmp_path / "grid.json") == published  # the file is written too


def test_an_opa_server_that_is_down_is_counted_and_the_file_still_written(
    tmp_path: Path, opa: opa_rest_double.OpaRestDouble, caplog: pytest.LogCaptureFixture
) -> None:
    opa.stop()
    settings = settings_for(tmp_path, engine={"opa_url": opa.url}, feed={"state_dir": tmp_path / "state",
                                                                         "publish_to": "opa"})
    feed = service.build_feed(settings, clock=clock.ManualClock(NOW))

    feed.refresh()

    assert sample(feed.metrics, "carbongate_feed_publishes_total", target="opa", outcome="error") == 1
    assert sample(feed.metrics, "carbongate_feed_publishes_total", target="file", outcome="ok") == 1
    assert "publishing the grid to opa failed" in caplog.text
    assert (tmp_path / "grid.json").exists()


def test_an_opa_server_error_is_a_publish_error(
    opa: opa_rest_double.OpaRestDouble, grid: contract.GridSnapshot
) -> None:
    opa.fault = "error500"

    with pytest.raises(publisher.PublishError, match="answered 500"):
        publisher.OpaServer(url=opa.url).put(grid)


def test_a_failed_publication_is_retried_on_the_next_refresh(
    tmp_path: Path, opa: opa_rest_double.OpaRestDouble
) -> None:
    settings = settings_for(tmp_path, engine={"opa_url": opa.url}, feed={"state_dir": tmp_path / "state",
                                                                         "publish_to": "opa"})
    feed = service.build_feed(settings, clock=clock.ManualClock(NOW))
    opa.fault = "error500"
    feed.refresh()
    opa.fault = "none"

    feed.refresh()  # same document, same minute: still sent, because the last attempt failed

    assert opa.data()["carbongate"]["grid"]["generated_at"] == "2026-11-22T12:07:00Z"


def test_an_engine_that_refuses_data_does_not_stop_the_other_sinks(
    tmp_path: Path, grid: contract.GridSnapshot
) -> None:
    class Refusing:
        def put_data(self, root: str, value: Any) -> None:
            raise ValueError("data is not JSON")

    feed_metrics = metrics.FeedMetrics()
    sinks: list[publisher.Sink] = [publisher.EngineSink(Refusing()), publisher.SnapshotFile(tmp_path / "g.json")]

    assert publisher.Publisher(sinks, feed_metrics=feed_metrics).publish(grid) is False
    assert sample(feed_metrics, "carbongate_feed_publishes_total", target="embedded", outcome="error") == 1
    assert (tmp_path / "g.json").exists()
