"""A policy engine that needs no policies, for service tests that decide what it answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class StubEngine:
    """Ready at once, never loads anything; subclasses answer ``evaluate`` their own way."""

    version = "test"
    ready = True

    def evaluate(self, path: str, input: Mapping[str, Any], *, wait_s: float | None = None) -> Any:
        return None

    def put_data(self, root: str, value: Mapping[str, Any]) -> None:
        pass

    def reload_policies(self) -> str:
        return "test"

    def start_watching(self, interval_s: float) -> None:
        pass

    def close(self) -> None:
        pass
