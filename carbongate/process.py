"""How a carbongate process ends: SIGTERM (the kubelet) or SIGINT (a terminal) sets one event.

The feed, the deferral controller and governance run their work on threads
and wait on this event in the main thread; when it is set they stop their
loops, hand their Lease back and close their HTTP sidecar, in that order, so
a rolling update never has two leaders and a probe never sees a half-stopped
process as healthy. (The webhook's process is gunicorn's, which has its own.)
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


def stop_on_signals(name: str, stop: threading.Event | None = None) -> threading.Event:
    """An event set on SIGTERM or SIGINT (``stop`` when given); call from the main thread."""
    event = stop or threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: signal %s, stopping", name, signal.Signals(signum).name)
        event.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    return event
