"""Waiting for something another thread or process will do, with a bound and a clear failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], *, timeout_s: float = 5.0, interval_s: float = 0.01) -> Any:
    """Poll ``check`` until it returns something truthy, and return that; fail with its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last: {value!r})")
        time.sleep(interval_s)
