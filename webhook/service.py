"""One worker's admission service: engine, documents, deadline, metrics.

Built inside the worker process (after gunicorn forks), because an embedded
OPA engine must never be created in the master. The HTTP layer calls
``handle``; everything here is safe under gthread's concurrent requests.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from carbongate import clock as clock_mod
from carbongate import files, platform
from carbongate import settings as settings_mod
from planner import plan as planning
from planner import snapshot
from policy_engine import engine as engine_mod
from policy_engine import errors as engine_errors
from webhook import admission, certificate, datasync, decision_cache, metrics, reviews, state

log = logging.getLogger(__name__)

DECISION_PATH = "carbongate/admission/decision"

class AdmissionService:
    """Answers AdmissionReviews for one worker."""

    def __init__(
        self,
        *,
        settings: settings_mod.Settings,
        engine: engine_mod.PolicyEngine,
        namespace_labels: state.NamespaceLabels,
        energy_kwh: admission.EnergyEstimate,
        clock: clock_mod.Now = clock_mod.utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self._namespaces = namespace_labels
        self._energy_kwh = energy_kwh
        self._clock = clock
        self._deadline_s = settings.webhook.decision_deadline_ms / 1000
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(2, settings.webhook.threads), thread_name_prefix="decide"
        )
        self.grid = self._document("grid", settings.grid.snapshot_path, _load_grid)
        self.budgets = self._document("budgets", settings.governance.budgets_snapshot_path, files.load_json)
        self.config = self._document("config", settings.engine.policy_dir / platform.CONFIG_FILE, files.load_json)
        self.certificate = certificate.Expiry(path=settings.webhook.certfile, clock=clock)
        self._grid_series: tuple[Any, Mapping[str, Any], dict[Any, Any]] | None = None
        self.decisions = decision_cache.DecisionCache(max_entries=settings.webhook.decision_cache_entries)
        self._data = datasync.DataSync(engine=engine, engine_kind=settings.engine.kind, monotonic=monotonic)
        self._stop = threading.Event()
        self._sync_thread: threading.Thread | None = None

    # -- data -------------------------------------------------------------

    def _document(self, name: str, path: Any, loader: files.Loader) -> files.WatchedDocument:
        def counted(error: str) -> None:
            metrics.DATA_RELOADS.labels(document=name, result="error").inc()

        return files.WatchedDocument(name=name, path=path, loader=loader, on_error=counted)

    def sync_data(self) -> None:
        """Take new grid, budget and config files; put them into the engine (:mod:`webhook.datasync`)."""
        for document, root in ((self.grid, "grid"), (self.budgets, "budgets")):
            if document.refresh():
                metrics.DATA_RELOADS.labels(document=document.name, result="ok").inc()
                if document.value is not None:
                    self._data.offer(root, document.value)
        self._data.push()
        self.config.refresh()
        self.certificate.refresh()

    def start_sync(self, interval_s: float = 1.0) -> None:
        """Poll the snapshot files in a daemon thread (one per worker)."""
        self.sync_data()

        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.sync_data()

        self._sync_thread = threading.Thread(target=loop, name="data-sync", daemon=True)
        self._sync_thread.start()

    @property
    def ready(self) -> bool:
        """Ready once the policies compiled and grid data is loaded."""
        return bool(self.engine.ready) and self.grid.value is not None

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- requests ---------------------------------------------------------

    def handle(self, body: bytes) -> tuple[int, Mapping[str, Any]]:
        """HTTP status and JSON body for a POST /mutate."""
        started = time.perf_counter()
        try:
            request = reviews.parse(body)
        except reviews.BadReview as error:
            metrics.BAD_REQUESTS.inc()
            return 400, {"error": str(error)}
        result = self._decide_within_deadline(request)
        self._count(request, result)
        metrics.LATENCY.observe(time.perf_counter() - started)
        return 200, result.response

    def _decide_within_deadline(self, request: reviews.Request) -> admission.Result:
        """The decision, in this thread; only the engine's evaluation waits on the deadline.

        A cache hit (a fan-out's every pod but the first) never leaves this
        thread; a miss hands the evaluation to the pool, where an evaluation
        that overruns the deadline finishes on its own while this request is
        admitted unchanged (``_evaluate``). The namespace read is bounded by
        the same deadline (its API timeout).
        """
        deadline = time.monotonic() + self._deadline_s
        try:
            return self._review(request, deadline)
        except Exception as error:  # a bug must admit, never fail the request
            log.exception("admitting %s unchanged after an internal error", request.uid)
            return admission.fail_open(request.uid, "internal-error", detail=repr(error))

    def _review(self, request: reviews.Request, deadline: float | None) -> admission.Result:
        """Decide; ``deadline`` (monotonic) is when the request stops waiting for the answer."""
        try:
            labels = self._namespaces.labels(request.namespace) if request.namespace else {}
        except Exception as error:
            log.warning("admitting %s unchanged: namespace %s unreadable: %s", request.uid, request.namespace, error)
            return admission.fail_open(request.uid, "namespace-unreadable")
        evaluate = functools.partial(self._evaluate, deadline=deadline)
        versions = self._versions()

        def decide(policy_input: Mapping[str, Any]) -> Any:
            return self.decisions.decide(versions, policy_input, evaluate)

        return admission.review(request, knowledge=self._knowledge(labels), decide=decide,
                                energy_kwh=self._energy_kwh)

    def _versions(self) -> tuple[Any, ...]:
        """What a decision depends on besides its input, read before deciding (by identity).

        The policy version (its config included), the documents this worker read,
        and the last of each the engine accepted: a push that failed and later
        succeeds changes the engine's data without changing the files.
        """
        return (self.engine.version, self.grid.value, self.budgets.value, self.config.value,
                self._data.accepted("grid"), self._data.accepted("budgets"))

    def _parsed_grid(self, grid: Mapping[str, Any] | None) -> tuple[Mapping[str, Any] | None, dict[Any, Any] | None]:
        """The grid's forecasts as series, parsed once per snapshot version, and its plans made so far."""
        if grid is None:
            return None, None
        cached = self._grid_series
        if cached is None or cached[0] is not grid:
            cached = self._grid_series = (grid, planning.parse_regions(grid["regions"]), {})
        return cached[1], cached[2]

    def _knowledge(self, namespace_labels: Mapping[str, str]) -> admission.Knowledge:
        grid = self.grid.value
        series, plans = self._parsed_grid(grid)
        return admission.knowledge(
            settings=self.settings, platform=platform.PlatformConfig.of(self.config.value),
            now=self._clock(), grid=grid, budgets=self.budgets.value,  # type: ignore[arg-type]
            namespace_labels=namespace_labels, policy_version=self.engine.version,
            grid_series=series, plans=plans, object_in_input=self.settings.webhook.policy_input_object,
        )

    def _evaluate(self, policy_input: Mapping[str, Any], *, deadline: float | None) -> Any:
        """The decision from a pool thread, waited for until ``deadline`` (monotonic) at most.

        Past the deadline the request is admitted unchanged (``DeadlinePassed``)
        and the evaluation, which cannot be interrupted, finishes in the pool.
        """
        if deadline is None:
            return self._evaluate_now(policy_input, deadline=None)
        try:
            future = self._pool.submit(self._evaluate_now, policy_input, deadline=deadline)
        except RuntimeError:
            # The pool refuses work once the interpreter is exiting, and a stopping
            # gunicorn worker can still be finishing requests then: evaluate here.
            return self._evaluate_now(policy_input, deadline=deadline)
        try:
            return future.result(timeout=max(deadline - time.monotonic(), 0.0))
        except concurrent.futures.TimeoutError as error:
            future.cancel()
            raise admission.DeadlinePassed(f"no decision within {self._deadline_s * 1000:.0f} ms") from error

    def _evaluate_now(self, policy_input: Mapping[str, Any], *, deadline: float | None) -> Any:
        """The decision; waiting for a free engine no longer than the request waits for it."""
        wait_s = None if deadline is None else deadline - time.monotonic()
        try:
            return self.engine.evaluate(DECISION_PATH, policy_input, wait_s=wait_s)
        except engine_errors.EngineBusyError as error:
            raise admission.DeadlinePassed(f"policy engine: {error}") from error
        except Exception as error:
            raise admission.DecisionError(f"policy engine: {error}") from error

    def _count(self, request: reviews.Request, result: admission.Result) -> None:
        if result.fail_open:
            metrics.FAIL_OPEN.labels(reason=result.fail_open).inc()
        if request.dry_run:
            metrics.DRY_RUN.inc()
            return
        decision = result.decision
        if decision is None:
            return
        mode = str(decision.get("mode") or "enforce")
        metrics.DECISIONS.labels(
            action=str(decision.get("action")),
            tier=str(decision.get("tier") or "none"),
            mode=mode,
        ).inc()
        if isinstance(decision.get("tier_refused"), str):
            metrics.TIER_REFUSALS.labels(namespace=request.namespace, team=str(decision.get("team") or "none")).inc()
        if mode == "dryrun" and decision.get("action") != "admit":
            log.info("dryrun: would have %s %s %s/%s (%s; %s)", decision.get("action"), request.kind,
                     request.namespace, request.name or "(generated)", decision.get("reason"), decision.get("message"))


def _load_grid(path: Any) -> Mapping[str, Any]:
    return snapshot.load_snapshot(path)
