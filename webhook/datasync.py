"""What the worker's policy engine holds of the grid and budgets, and putting it there (again).

The webhook worker reads the grid and budgets files; this object decides which
of them go into its engine and keeps them there:

* an embedded engine takes both documents; an OPA sidecar (``engine.kind =
  "opa"``) only the budgets (governance's ConfigMap, mounted as the file): its
  grid comes from the feed sidecar, the one writer OPA's authorization grants it;
* a put that fails is tried again on the next sync, so a sidecar that starts
  after the webhook, or restarts, still receives the budgets; data the engine
  refused as invalid (``PolicyDataError``) and an in-process engine's failure
  wait for the next version of the file instead;
* OPA keeps data in memory only: every :data:`OPA_REPUT_S` the last budgets OPA
  accepted are put again, so a restarted sidecar does not go without them until
  governance's next change. Only an accepted version: a refused one would be
  refused again, every minute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from policy_engine import errors as engine_errors
from webhook import metrics

log = logging.getLogger(__name__)

OPA_REPUT_S = 60.0
ROOTS = ("grid", "budgets")


class DataEngine(Protocol):
    def put_data(self, root: str, value: Mapping[str, Any]) -> None: ...


class DataSync:
    """The documents waiting for the engine and the last version it took of each."""

    def __init__(self, *, engine: DataEngine, engine_kind: str, monotonic: Callable[[], float]) -> None:
        self._engine = engine
        self._kind = engine_kind
        self._monotonic = monotonic
        self._pending: dict[str, Mapping[str, Any]] = {}
        self._accepted: dict[str, tuple[Mapping[str, Any], float]] = {}

    def accepted(self, root: str) -> tuple[Mapping[str, Any], float] | None:
        """The last version of a document the engine accepted, and when: part of what a decision depends on."""
        return self._accepted.get(root)

    def takes(self, root: str) -> bool:
        """Whether this worker puts ``data.carbongate.<root>`` into its engine."""
        return self._kind == "embedded" or root == "budgets"

    def offer(self, root: str, value: Mapping[str, Any]) -> None:
        """A new version of a document was loaded: put it on the next :meth:`push` if the engine takes it."""
        if self.takes(root):
            self._pending[root] = value

    def push(self) -> None:
        """Put what waits (and the budgets again when due); a failure stays pending per the module's rules."""
        self._reput_budgets_if_due()
        for root, value in list(self._pending.items()):
            if self._put(root, value):
                del self._pending[root]

    def _reput_budgets_if_due(self) -> None:
        accepted = self._accepted.get("budgets")
        if (self._kind == "opa" and accepted is not None
                and self._monotonic() - accepted[1] >= OPA_REPUT_S):
            self._pending.setdefault("budgets", accepted[0])

    def _put(self, root: str, value: Mapping[str, Any]) -> bool:
        """Put a document into the engine; False when it should be tried again."""
        try:
            self._engine.put_data(root, value)
        except Exception as error:  # an engine failure must not stop the sync loop
            log.error("cannot publish %s to the policy engine: %s", root, error)
            metrics.DATA_RELOADS.labels(document=root, result="error").inc()
            return isinstance(error, engine_errors.PolicyDataError) or self._kind != "opa"
        self._accepted[root] = (value, self._monotonic())
        return True
