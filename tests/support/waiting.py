"""Waiting for something another thread or process will do, with a bound and a clear failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# Long enough for what a loaded CI machine does between a change and its effect (a
# file watch noticing a new snapshot, a new engine compiled with its data, an
# evaluation): 5 s was missed once at load average 7. A passing wait returns as soon
# as its condition holds, so only a failing test pays the bound.
DEFAULT_TIMEOUT_S = 15.0


def eventually(check: Callable[[], Any], *, timeout_s: float = DEFAULT_TIMEOUT_S,
               interval_s: float = 0.01) -> Any:
    """Poll ``check`` until it returns something truthy, and return that; fail with its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last: {value!r})")
        time.sleep(interval_s)
