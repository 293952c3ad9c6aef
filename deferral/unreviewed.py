"""The watchers' sink that also counts workloads the webhook never saw.

Every Pod and Job the controller lists or watches goes to the reconciler as
before and, on the way, to :class:`carbongate.unreviewed.Unreviewed`, which
governance's collector shares (docs/deferral.md, "No silent failure").
"""

from __future__ import annotations

from typing import Any

from carbongate import unreviewed
from deferral import watch, workloads


class Counting:
    """A :class:`deferral.watch.Sink` that shows everything to the counter, then passes it on."""

    def __init__(self, *, sink: watch.Sink, counter: unreviewed.Unreviewed) -> None:
        self._sink, self._counter = sink, counter

    def sync(self, kind: workloads.Kind, items: list[dict[str, Any]]) -> None:
        for obj in items:
            self._counter.observe(kind, obj)
        self._sink.sync(kind, items)

    def event(self, kind: workloads.Kind, type_: watch.EventType, obj: dict[str, Any]) -> None:
        self._counter.observe(kind, obj)  # DELETED too: a pod gone in seconds was still missed
        self._sink.event(kind, type_, obj)
