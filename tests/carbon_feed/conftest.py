"""Fixtures for the feed tests: a settable clock, build context, metrics and chain state.

Provider responses are the recorded bodies in ``tests/fixtures/carbon_feed``
(see the README there), served by pytest-httpserver on 127.0.0.1 so every
test goes through real HTTP: sockets, status codes, headers, timeouts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from carbon_feed import chain, config, metrics
from carbongate import clock
from tests.carbon_feed import helpers


@pytest.fixture
def manual_clock() -> clock.ManualClock:
    return clock.ManualClock(helpers.at("2024-01-12T06:01:00Z"))


@pytest.fixture
def context(manual_clock: clock.ManualClock, tmp_path: Path) -> config.BuildContext:
    """What provider factories get; credentials come from this fake environment."""
    return config.BuildContext(
        timeout_s=2.0, base_dir=tmp_path, clock=manual_clock,
        environ={"WT_USER": "carbon", "WT_PASSWORD": "s3cret-pw", "EM_TOKEN": "em-t0ken"},
    )


@pytest.fixture
def feed_metrics() -> metrics.FeedMetrics:
    return metrics.FeedMetrics()


@pytest.fixture
def parts(tmp_path: Path, feed_metrics: metrics.FeedMetrics) -> chain.ChainParts:
    """Chain state with a 300 s TTL and a last-known-good directory of this test's own."""
    return helpers.make_parts(tmp_path / "state", feed_metrics)
