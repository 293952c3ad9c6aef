"""The embedded engine: OPA's Go evaluator in-process, swapped whole on every change.

``opa_bindings.OpaEngine`` can add data but never remove it (``add_data``
deep-merges), so replacing ``data.carbongate.grid`` in place is impossible:
a key the feed dropped would stay forever. Every new data version and every
new policy version therefore builds a *generation*: fresh engines holding
the policies, the directory's data files and the current data documents.
A generation is validated before anyone sees it, then the reference is
swapped under a lock held only for the swap. Evaluations that started on
the previous generation finish on it; the last one to leave closes it
(reference counting), so no engine leaks and none is closed under a reader.

Validation matters because the bindings report errors late: a parse error
raises at ``add_policy``, but unsafe variables, type errors, undefined
functions and recursion only surface when the first query is prepared
("bundle activation failed"). A probe query compiles every module, and
each entry point is then evaluated once so its prepared query is warm when
the first admission arrives.

A generation holds ``pool_size`` identical engines. One ``OpaEngine``
serialises evaluations behind an internal lock; the Go call itself releases
the GIL, so a second engine lets two threads evaluate at once on two cores.
docs/engines.md has the measurement behind the default.

Fork safety: nothing happens at import time (the Go runtime starts with the
first ``OpaEngine()``). Build an engine in each gunicorn worker after the
fork; one built before a fork refuses to evaluate in the child.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from opa_bindings import OpaEngine, OpaError, OpaUndefinedError

from policy_engine import engine, errors, loader, metrics, watcher

log = logging.getLogger(__name__)

ENGINE_LABEL: Final = "embedded"
# "bundle activation failed: 2 errors occurred:\nfile.rego:3: rego_type_error: ..."
_ERROR_HEADER = re.compile(r"^(?:bundle activation failed: )?\d+ errors? occurred:\s*")
_LOCATED = re.compile(r"^(?P<file>[^\s:][^:]*\.rego):(?P<line>\d+): (?P<text>.*)$")


class EmbeddedEngine:
    """A :class:`policy_engine.engine.PolicyEngine` evaluating in this process."""

    def __init__(
        self,
        *,
        policy_dir: Path,
        pool_size: int = 2,
        entry_points: Sequence[str] = engine.ENTRY_POINTS,
    ) -> None:
        if pool_size < 1:
            raise errors.EngineConfigError(f"embedded pool size must be at least 1, not {pool_size}")
        self._policy_dir = Path(policy_dir)
        self._pool_size = pool_size
        self._entry_points = tuple(engine.dotted_path(point) for point in entry_points)
        self._pid = os.getpid()
        self._lock = threading.Lock()          # guards _current and reference counts
        self._update_lock = threading.Lock()   # one rebuild at a time, outside _lock
        self._current: _Generation | None = None
        self._closed = False
        self._open_engines = 0
        self._watcher: watcher.PolicyWatcher | None = None
        self.reload_policies()

    # -- PolicyEngine -----------------------------------------------------

    @property
    def version(self) -> str:
        generation = self._current
        return generation.policies.version if generation is not None else ""

    @property
    def ready(self) -> bool:
        generation = self._current
        return generation is not None and "grid" in generation.documents

    @property
    def open_engines(self) -> int:
        """OpaEngine instances not yet closed: the current pool plus retired ones in use."""
        with self._lock:
            return self._open_engines

    def evaluate(self, path: str, input: Mapping[str, Any], *, wait_s: float | None = None) -> Any | None:
        dotted = engine.dotted_path(path)
        started = time.perf_counter()
        try:
            generation = self._checkout()
            try:
                return generation.evaluate(dotted, dict(input), wait_s=wait_s)
            finally:
                self._checkin(generation)
        except OpaUndefinedError:
            return None
        except OpaError as error:
            metrics.EVAL_ERRORS.labels(ENGINE_LABEL).inc()
            raise errors.PolicyEvaluationError(f"{path}: {error.message}") from error
        except (TypeError, ValueError) as error:
            metrics.EVAL_ERRORS.labels(ENGINE_LABEL).inc()
            raise errors.PolicyEvaluationError(f"{path}: input is not JSON: {error}") from error
        finally:
            metrics.EVAL_SECONDS.labels(ENGINE_LABEL).observe(time.perf_counter() - started)

    def put_data(self, root: str, value: Mapping[str, Any]) -> None:
        root = engine.check_data_root(root)
        try:
            document = engine.json_document(value)
            with self._update_lock:
                current = self._live()
                _check_no_overlap(current.policies, {**current.documents, root: document})
                generation = self._build(current.policies, {**current.documents, root: document})
                self._swap(generation)
        except errors.PolicyEngineError:
            metrics.DATA_UPDATES.labels(ENGINE_LABEL, root, "error").inc()
            raise
        metrics.DATA_UPDATES.labels(ENGINE_LABEL, root, "ok").inc()

    def reload_policies(self) -> str:
        with self._update_lock:
            if self._closed:
                raise errors.PolicyEngineError("engine is closed")
            documents = self._current.documents if self._current is not None else {}
            try:
                policies = loader.load(self._policy_dir)
                _check_no_overlap(policies, documents)
                generation = self._build(policies, documents)
            except errors.PolicyEngineError as error:
                metrics.COMPILE_ERRORS.inc()
                metrics.POLICY_RELOADS.labels("error").inc()
                if isinstance(error, errors.PolicyCompileError):
                    raise
                raise errors.PolicyCompileError(str(error)) from error
            self._swap(generation)
        metrics.POLICY_RELOADS.labels("ok").inc()
        return policies.version

    def start_watching(self, interval_s: float) -> None:
        if self._watcher is None:
            self._watcher = watcher.PolicyWatcher(
                directory=self._policy_dir, reload=self.reload_policies,
                interval_s=interval_s, loaded=self._live().policies.digest)
            self._watcher.start()

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        with self._update_lock:
            self._closed = True
            self._swap(None)

    # -- generations ------------------------------------------------------

    def _live(self) -> _Generation:
        generation = self._current
        if generation is None:
            raise errors.PolicyEngineError("engine is closed")
        return generation

    def _checkout(self) -> _Generation:
        if os.getpid() != self._pid:
            raise errors.PolicyEvaluationError(
                "embedded engine built before a fork cannot evaluate in the child: "
                "build it in the worker")
        with self._lock:
            generation = self._current
            if generation is None:
                raise errors.PolicyEvaluationError("policy engine is closed")
            generation.users += 1
            return generation

    def _checkin(self, generation: _Generation) -> None:
        with self._lock:
            generation.users -= 1
            finished = generation.retired and generation.users == 0
        if finished:
            self._dispose(generation)

    def _swap(self, generation: _Generation | None) -> None:
        with self._lock:
            previous, self._current = self._current, generation
            finished = previous is not None and previous.users == 0
            if previous is not None:
                previous.retired = True
        if generation is not None:
            metrics.ENGINE_SWAPS.inc()
        if finished and previous is not None:
            self._dispose(previous)

    def _dispose(self, generation: _Generation) -> None:
        closed = generation.close()
        with self._lock:
            self._open_engines -= closed

    def _build(self, policies: loader.PolicySet, documents: Mapping[str, Any]) -> _Generation:
        engines = [_compile(policies, documents, self._entry_points)]
        try:
            while len(engines) < self._pool_size:
                engines.append(_compile(policies, documents, self._entry_points))
        except errors.PolicyEngineError:
            for built in engines:
                built.close()
            raise
        with self._lock:
            self._open_engines += len(engines)
        return _Generation(policies, dict(documents), engines)


class _Generation:
    """One immutable version of policies + data, as a pool of identical engines.

    ``users`` and ``retired`` are guarded by the owning engine's lock.
    """

    def __init__(self, policies: loader.PolicySet, documents: dict[str, Any],
                 engines: list[OpaEngine]) -> None:
        self.policies = policies
        self.documents = documents
        self.users = 0
        self.retired = False
        self._engines = engines
        self._pool = _FairPool(engines)

    def evaluate(self, dotted: str, input: dict[str, Any], *, wait_s: float | None = None) -> Any:
        """Borrow an idle engine (waiting in line when all are busy, at most ``wait_s``) and evaluate on it."""
        item = self._pool.acquire(wait_s)
        if item is None:
            metrics.EVAL_ERRORS.labels(ENGINE_LABEL).inc()
            raise errors.EngineBusyError(
                f"data.{dotted}: no policy engine free within {wait_s:.3f} s (all busy evaluating)")
        try:
            return item.eval_document(dotted, input)
        finally:
            self._pool.release(item)

    def close(self) -> int:
        for item in self._engines:
            item.close()
        return len(self._engines)


class _FairPool:
    """Engines handed out first come, first served.

    A plain queue (or the engine's own lock) lets the thread that just
    returned an engine take it straight back while others wait: measured
    with 8 threads on one engine, that starved some evaluations for
    seconds. Here a returned engine goes directly to the longest waiter.
    """

    def __init__(self, engines: Sequence[OpaEngine]) -> None:
        self._lock = threading.Lock()
        self._idle = list(engines)
        self._waiters: collections.deque[_Waiter] = collections.deque()

    def acquire(self, timeout_s: float | None = None) -> OpaEngine | None:
        """An engine, or None when none was handed over within ``timeout_s``.

        A waiter that gives up leaves the line, so an engine is never handed
        to a caller that is gone: abandoned evaluations do not pile up behind
        a slow policy and hold every decision thread after it is fixed.
        """
        with self._lock:
            if self._idle:
                return self._idle.pop()
            waiter = _Waiter()
            self._waiters.append(waiter)
        if not waiter.handed.wait(None if timeout_s is None else max(timeout_s, 0.0)):
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                    return None
            # Handed an engine between the timeout and the lock: keep it.
        assert waiter.engine is not None
        return waiter.engine

    def release(self, item: OpaEngine) -> None:
        with self._lock:
            if not self._waiters:
                self._idle.append(item)
                return
            waiter = self._waiters.popleft()
        waiter.engine = item
        waiter.handed.set()


class _Waiter:
    __slots__ = ("engine", "handed")

    def __init__(self) -> None:
        self.engine: OpaEngine | None = None
        self.handed = threading.Event()


def _compile(policies: loader.PolicySet, documents: Mapping[str, Any],
             entry_points: Sequence[str]) -> OpaEngine:
    """A fresh engine with everything loaded, compiled and probed, or an error."""
    fresh = OpaEngine()
    try:
        _load_modules(fresh, policies)
        _load_documents(fresh, policies, documents)
        _probe(fresh, entry_points)
    except BaseException:
        fresh.close()
        raise
    return fresh


def _load_modules(fresh: OpaEngine, policies: loader.PolicySet) -> None:
    problems: list[errors.CompileProblem] = []
    for module in policies.modules:
        try:
            fresh.add_policy(module.path, module.source)
        except OpaError as error:
            problems.extend(_problems(error.message, default_file=module.path))
    if problems:
        raise errors.PolicyCompileError(
            f"policies in {policies.directory} do not parse", problems)


def _load_documents(fresh: OpaEngine, policies: loader.PolicySet,
                    documents: Mapping[str, Any]) -> None:
    for document in policies.documents:
        try:
            fresh.add_data(document.value, document.data_path)
        except OpaError as error:
            raise errors.PolicyCompileError(
                f"policies in {policies.directory}: cannot load data",
                [errors.CompileProblem(document.file, None, error.message)]) from error
    for root, value in documents.items():
        try:
            fresh.add_data(value, f"{engine.DATA_PREFIX}.{root}")
        except OpaError as error:
            raise errors.PolicyDataError(
                f"data.{engine.DATA_PREFIX}.{root}: {error.message}") from error


def _probe(fresh: OpaEngine, entry_points: Sequence[str]) -> None:
    """Compile every module now (not at the first admission) and warm the entry points."""
    try:
        fresh.eval_query("true")
    except OpaError as error:
        raise errors.PolicyCompileError("policies do not compile", _problems(error.message)) from error
    for point in entry_points:
        try:
            fresh.eval_document(point, {})
        except OpaUndefinedError:
            pass
        except OpaError as error:
            # Input-dependent: an empty input is not a real request, so a
            # runtime error here is worth a warning but not a rejection.
            log.warning("probe of data.%s with an empty input failed: %s", point, error.message)


def _problems(message: str, *, default_file: str = "") -> list[errors.CompileProblem]:
    """Split the Go engine's error text into one problem per ``file:line``."""
    problems: list[errors.CompileProblem] = []
    for raw in _ERROR_HEADER.sub("", message.strip()).splitlines():
        line = _ERROR_HEADER.sub("", raw).strip()
        located = _LOCATED.match(line)
        if located:
            problems.append(errors.CompileProblem(
                located["file"], int(located["line"]), located["text"]))
        elif problems and line and line != "^":
            last = problems[-1]
            problems[-1] = errors.CompileProblem(last.file, last.line, f"{last.message}; {line}")
        elif line and not problems:
            problems.append(errors.CompileProblem(default_file, None, line))
    return problems


def _check_no_overlap(policies: loader.PolicySet, documents: Mapping[str, Any]) -> None:
    """A data root written by put_data must not share a path with a data.json."""
    for root in documents:
        written = f"{engine.DATA_PREFIX}.{root}"
        for owned in policies.data_paths:
            if written == owned or written.startswith(owned + ".") or owned.startswith(written + "."):
                raise errors.PolicyDataError(
                    f"data.{written} is written at run time but data.{owned} comes from "
                    f"the policy directory: they must not overlap")
