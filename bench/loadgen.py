"""A small HTTPS load generator with keep-alive, for the benchmarks and the soak test.

Two shapes:
- ``fixed_rate``: open loop. Sends are scheduled at a fixed rate and latency
  is measured from the *scheduled* time, so a stalled server shows up as
  latency instead of silently lowering the rate (no coordinated omission).
- ``saturation``: closed loop over several processes, each with a few
  keep-alive connections, as fast as the server answers.

Every loop is bounded in count and time and talks only to the URL it is
given (the benchmarks give 127.0.0.1).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import queue
import ssl
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

# In the warning of every fail-open response (webhook.admission.fail_open).
FAIL_OPEN_MARK = b"admitted unchanged, no decision"


@dataclass(frozen=True)
class Stats:
    """What one load run measured."""

    sent: int
    errors: int
    seconds: float
    latencies_ms: tuple[float, ...]
    # Answered, but "admitted unchanged, no decision": counted apart, not as served.
    fail_opens: int = 0

    @property
    def rps(self) -> float:
        return (self.sent - self.errors - self.fail_opens) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def summary(self) -> dict[str, float]:
        return {
            "sent": self.sent, "errors": self.errors, "fail_opens": self.fail_opens, "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile(50), 2), "p95_ms": round(self.percentile(95), 2),
            "p99_ms": round(self.percentile(99), 2),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 2) if self.latencies_ms else float("nan"),
        }


class _Client:
    """One keep-alive HTTPS connection that reconnects when the server closes it."""

    def __init__(self, url: str, ca_file: str) -> None:
        parts = urlsplit(url)
        self._host, self._port, self._path = parts.hostname or "127.0.0.1", parts.port or 443, parts.path
        self._context = ssl.create_default_context(cafile=ca_file)
        self._connection: http.client.HTTPSConnection | None = None
        self.fail_opens = 0

    def post(self, body: bytes) -> bool:
        for attempt in range(2):
            try:
                if self._connection is None:
                    self._connection = http.client.HTTPSConnection(
                        self._host, self._port, context=self._context, timeout=10)
                self._connection.request("POST", self._path, body=body,
                                         headers={"Content-Type": "application/json"})
                response = self._connection.getresponse()
                payload = response.read()
                self.fail_opens += FAIL_OPEN_MARK in payload
                return response.status == 200 and b'"allowed"' in payload
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    return False
        return False

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def fixed_rate(url: str, bodies: Sequence[bytes], *, rate: float, seconds: float, ca_file: str,
               connections: int = 8) -> Stats:
    """Open-loop load at ``rate`` requests/s for ``seconds``."""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    schedule: queue.Queue[tuple[int, float] | None] = queue.Queue()
    for i in range(total):
        schedule.put((i, start + i / rate))
    for _ in range(connections):
        schedule.put(None)
    latencies: list[float] = []
    errors = [0]
    fail_opens = [0]
    lock = threading.Lock()

    def worker() -> None:
        client = _Client(url, ca_file)
        while (item := schedule.get()) is not None:
            index, due = item
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            ok = client.post(bodies[index % len(bodies)])
            elapsed = (time.perf_counter() - due) * 1000
            with lock:
                latencies.append(elapsed)
                errors[0] += 0 if ok else 1
        client.close()
        with lock:
            fail_opens[0] += client.fail_opens

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    return Stats(sent=total, errors=errors[0], seconds=time.perf_counter() - start,
                 latencies_ms=tuple(latencies), fail_opens=fail_opens[0])


def _closed_loop(url: str, bodies: list[bytes], seconds: float, ca_file: str, threads: int,
                 out: multiprocessing.Queue[str], start: int = 0) -> None:
    latencies: list[float] = []
    errors = [0]
    fail_opens = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        client = _Client(url, ca_file)
        i = offset
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            ok = client.post(bodies[i % len(bodies)])
            with lock:
                latencies.append((time.perf_counter() - began) * 1000)
                errors[0] += 0 if ok else 1
            i += threads
        client.close()
        with lock:
            fail_opens[0] += client.fail_opens

    pool = [threading.Thread(target=worker, args=(start + n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=seconds + 30)
    out.put(json.dumps({"latencies": latencies, "errors": errors[0], "fail_opens": fail_opens[0]}))


def saturation(url: str, bodies: Sequence[bytes], *, seconds: float, ca_file: str,
               processes: int = 2, threads: int = 4) -> Stats:
    """Closed-loop load from ``processes`` × ``threads`` keep-alive connections.

    Each process starts at its own share of ``bodies``, so with many distinct
    bodies no two connections send the same one at the same time.
    """
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[str] = context.Queue()
    share = max(threads, len(bodies) // processes)
    workers = [context.Process(target=_closed_loop,
                               args=(url, list(bodies), seconds, ca_file, threads, out, n * share))
               for n in range(processes)]
    began = time.perf_counter()
    for process in workers:
        process.start()
    results = [json.loads(out.get(timeout=seconds + 120)) for _ in workers]
    for process in workers:
        process.join(timeout=30)
    latencies = tuple(latency for r in results for latency in r["latencies"])
    return Stats(sent=len(latencies), errors=sum(r["errors"] for r in results),
                 seconds=time.perf_counter() - began, latencies_ms=latencies,
                 fail_opens=sum(r["fail_opens"] for r in results))
