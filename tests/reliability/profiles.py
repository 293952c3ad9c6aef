"""Hypothesis example budgets: bounded by default, the ``long`` profile on request.

Importing this module registers the ``long`` profile (``conftest.py`` imports
it, so ``pytest tests/reliability --hypothesis-profile=long`` finds it).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

LONG_PROFILE = "long"
_SUPPRESSED = (HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example)

settings.register_profile(LONG_PROFILE, max_examples=3000, deadline=None,
                          suppress_health_check=_SUPPRESSED)


def examples(count: int) -> settings:
    """Settings for a fuzz test: ``count`` examples, or the ``long`` profile's when it is loaded.

    No per-example deadline: the tests time every request themselves and
    assert a bound that means "did not hang", which a Hypothesis deadline
    (tuned for pure functions) would report as flakiness instead.
    """
    if settings.get_current_profile_name() == LONG_PROFILE:
        return settings(deadline=None, suppress_health_check=_SUPPRESSED)
    return settings(max_examples=count, deadline=None, suppress_health_check=_SUPPRESSED)
