"""Reload policies when the policy directory changes, by polling.

Polling the digest of a few small files every couple of seconds costs
nothing measurable and needs no extra dependency, and it also works where
inotify does not: a ConfigMap mount changes by swapping a symlink, which
inotify on the visible files never reports.

Threads do not survive ``fork``: an engine starts its watcher in the
gunicorn worker, after the fork, never at import time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from policy_engine import errors, loader

log = logging.getLogger(__name__)


class PolicyWatcher:
    """Calls ``reload`` when the directory's fingerprint changes or ``stale()`` says so.

    A version that fails to compile is tried once: the watcher waits for the
    next edit instead of logging the same error every tick. A failure that
    is not the policy's fault (an unreachable OPA server) is retried.
    """

    def __init__(
        self,
        *,
        directory: Path,
        reload: Callable[[], str],
        interval_s: float,
        loaded: str | None = None,
        stale: Callable[[], bool] = lambda: False,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"watch interval must be positive, not {interval_s}")
        self._directory = directory
        self._reload = reload
        self._interval_s = interval_s
        self._stale = stale
        self._seen = loaded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the daemon thread (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="carbongate-policy-watcher",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop polling and wait for a reload in progress to finish."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def check(self) -> bool:
        """One poll; True when a reload was attempted. Never raises."""
        try:
            current = loader.fingerprint(self._directory)
        except errors.PolicyEngineError as error:
            log.warning("policy watcher: %s", error)
            return False
        if current == self._seen and not self._stale():
            return False
        try:
            version = self._reload()
        except errors.PolicyCompileError as error:
            self._seen = current
            log.error("policy edit rejected, previous policies keep answering:\n%s", error)
        except Exception as error:
            log.error("policy reload failed, will retry: %s", error)
        else:
            self._seen = current
            log.info("policies reloaded from %s: version %s", self._directory, version)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.check()
