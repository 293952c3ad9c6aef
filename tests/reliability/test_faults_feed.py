"""The feed killed in the middle of an update and restarted: no half document, no region lost.

``python -m carbon_feed`` polls two Electricity Maps-shaped providers (real
HTTP servers, tests/reliability/feed_side.py) and writes the snapshot the
webhook server (gunicorn, TLS, embedded OPA) decides on, under steady review
traffic. The feed is SIGKILLed (no handler runs, no file is closed):

1. inside a refresh: the primary holds DE's request open, so GB has been
   fetched and written to the last-known-good file and DE has not; the feed
   then restarts with every provider down, so all it has is what the killed
   one left on disk;
2. at random moments of start-up and polling, five times in a row, which
   lands kills on the snapshot and last-known-good writes.

Throughout, a reader polling the snapshot file must only ever see a whole,
valid document with every region, the webhook must answer every review and
never fail to load the file, and after each restart the feed must publish at
once and end up live and healthy.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability import feed_side, servers, traffic

pytestmark = pytest.mark.xdist_group("reliability")

LIVE = feed_side.everywhere("electricitymaps", fallback=False, stale=False)
LAST_KNOWN_GOOD = feed_side.everywhere("last-known-good:electricitymaps", fallback=True, stale=False)
RANDOM_KILLS = 5


class GridSide:
    """Providers, the feed's settings and the current feed process (replaced on every restart)."""

    def __init__(self, providers: feed_side.Providers, paths: feed_side.FeedPaths, directory: Path) -> None:
        self.providers = providers
        self.paths = paths
        self.directory = directory
        self.feed = feed_side.feed_process(directory, paths).start()
        self.logs: list[str] = []

    def restart(self) -> float:
        """SIGKILL the feed and start a new one; the monotonic time of the kill."""
        self.feed.kill()
        killed_at = time.monotonic()
        self.logs.append(self.feed.log())
        self.feed.start()
        return killed_at

    def generated_at(self) -> str:
        return str(json.loads(self.paths.snapshot.read_text(encoding="utf-8"))["generated_at"])

    def live(self) -> bool:
        return feed_side.sources(self.paths.snapshot) == LIVE


@pytest.fixture
def grid_side(tmp_path: Path) -> Iterator[GridSide]:
    with feed_side.providers() as providers:
        paths = feed_side.feed_config(tmp_path, snapshot=tmp_path / "webhook" / "grid.json",
                                      providers_file=providers.providers_file(tmp_path), stale_grace_s=600)
        side = GridSide(providers, paths, tmp_path)
        try:
            servers.wait_for(lambda: paths.snapshot.exists() and side.live(), timeout_s=30, what="a live snapshot")
            yield side
        finally:
            side.feed.stop()


def leftover_temporaries(*directories: Path) -> list[str]:
    return sorted(p.name for d in directories for p in d.glob(".*.tmp"))


def test_a_feed_killed_mid_update_restarts_from_what_it_wrote_and_nothing_is_lost(
        grid_side: GridSide, tmp_path: Path) -> None:
    paths, providers = grid_side.paths, grid_side.providers
    with (servers.webhook(tmp_path / "webhook", write_grid=False) as server,
          feed_side.SnapshotWatch(paths.snapshot) as watch,
          traffic.Traffic(server, threads=2, pause_s=0.05, name="feed") as load):
        providers.primary.hold("DE")
        assert providers.primary.held.wait(15), "the feed never asked the primary for DE"
        before = grid_side.generated_at()
        providers.all_down()
        killed_at = grid_side.restart()
        providers.primary.release()
        servers.wait_for(lambda: grid_side.generated_at() != before, timeout_s=15,
                         what="the restarted feed publishing")
        first_publish_s = time.monotonic() - killed_at
        assert feed_side.sources(paths.snapshot) == LAST_KNOWN_GOOD  # from disk alone, every region

        providers.all_up()
        servers.wait_for(grid_side.live, timeout_s=15, what="live data after the providers returned")

        chance = random.Random(8)
        for _ in range(RANDOM_KILLS):
            time.sleep(chance.uniform(0.2, 2.5))
            grid_side.restart()
        servers.wait_for(grid_side.live, timeout_s=20, what="live data after the last restart")
        servers.wait_for(lambda: paths.health()[0] == 200, timeout_s=10, what="a healthy feed")
        load_kinds = load.kinds()
        grid_errors = servers.metric(server, "carbongate_webhook_data_reloads_total", document="grid",
                                     result="error")
        grid_loads = servers.metric(server, "carbongate_webhook_data_reloads_total", document="grid", result="ok")
        broken = servers.metric(server, "carbongate_fail_open_total", reason="internal-error")
    assert grid_side.feed.stop() == 0, grid_side.feed.log()[-2000:]

    assert watch.problems == [] and watch.missing_regions == [], (watch.problems[:3], watch.missing_regions[:3])
    assert set(load_kinds) == {"ok"}, [o for o in load.outcomes if o.kind != "ok"][:5]
    assert grid_errors == 0 and broken == 0
    stored = json.loads(paths.last_known_good.read_text(encoding="utf-8"))
    assert set(stored["readings"]) == set(feed_side.REGIONS)
    unreadable = [log for log in grid_side.logs if "ignoring unreadable last-known-good" in log]
    assert unreadable == []
    leftovers = leftover_temporaries(paths.snapshot.parent, paths.state_dir)
    print(f"\nfeed killed {1 + RANDOM_KILLS} times: first publish {first_publish_s:.1f} s after the "
          f"mid-update kill; {watch.reads} snapshot reads all whole; {sum(load_kinds.values())} reviews "
          f"all answered; {grid_loads:.0f} grid loads in the webhook; leftover temp files {leftovers}")
