"""Shared helpers of the feed tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from carbon_feed import cache, chain, metrics

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "carbon_feed"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "grid"


def recorded(name: str) -> Any:
    """A recorded provider body, decoded."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def at(text: str) -> datetime:
    """An RFC 3339 instant as an aware datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


def make_parts(state_dir: Path, feed_metrics: metrics.FeedMetrics, *, ttl_s: float = 300.0) -> chain.ChainParts:
    """Chain state with a seeded jitter and a last-known-good directory of its own."""
    return chain.ChainParts(
        readings=cache.TtlCache(ttl_s=ttl_s),
        gate=cache.PollGate(ttl_s=ttl_s, backoff_max_s=3600.0, rng=random.Random(7)),
        last_known_good=cache.LastKnownGood(state_dir=state_dir),
        metrics=feed_metrics,
        max_clock_skew_s=300.0,
    )


def sample(feed_metrics: metrics.FeedMetrics, name: str, **labels: str) -> float:
    """The current value of one metric sample (0 when never touched)."""
    value = feed_metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
