"""Real processes for the fault, load and security tests, and ways to look inside them.

The webhook is started exactly as ``make run`` starts it (``python -m webhook``:
gunicorn, asgi workers, TLS) through ``tests.support.webhook_server``, but
without ``--dev``: the grid snapshot is written by the test (``grid``) or by a
separately started feed process, so a fault in one does not hide in the other.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.reliability import grid
from tests.support import webhook_server

ROOT = Path(__file__).resolve().parents[2]


def tier3_review(uid: str = "r-1", *, namespace: str = "batch", max_delay: str = "24h") -> dict[str, Any]:
    """A captured tier-3 Pod CREATE that the policy decides on (not exempt, not owned by a Job).

    Each uid gets its own team label, so the policy input differs per review and the
    webhook's decision cache never answers one review with another's decision: these
    tests are about what the engine does under faults.
    """
    document: dict[str, Any] = json.loads(
        (ROOT / "tests/fixtures/admission/k8s-v1.28-loopback/15_create-pod_gated-batch.json").read_text())
    request = document["request"]
    request["uid"], request["namespace"] = uid, namespace
    obj = request["object"]
    obj["metadata"]["namespace"] = namespace
    obj["metadata"].setdefault("labels", {})["carbongate.io/team"] = f"team-{uid}"[:63]
    obj["metadata"]["annotations"] = {"carbongate.io/max-delay": max_delay,
                                      "carbongate.io/expected-duration": "1h"}
    obj["spec"].pop("schedulingGates", None)
    return document


def review_body(uid: str = "r-1") -> bytes:
    return json.dumps(tier3_review(uid)).encode()


@contextmanager
def webhook(directory: Path, *, sections: Mapping[str, Mapping[str, Any]] = {},
            write_grid: bool = True, env: Mapping[str, str] | None = None) -> Iterator[webhook_server.RunningWebhook]:
    """The webhook server over a grid snapshot cut from the real traces at the wall-clock hour."""
    directory.mkdir(parents=True, exist_ok=True)
    if write_grid:
        grid.write(directory / "grid.json", grid.build(datetime.now(timezone.utc)))
    saved = {key: os.environ.get(key) for key in (env or {})}
    os.environ.update(env or {})
    try:
        with webhook_server.running_webhook(directory, sections=sections, dev=False) as server:
            yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def metric(server: webhook_server.RunningWebhook, sample: str, **labels: str) -> float:
    """One sample of the server's /metrics (summed over workers by multiprocess mode); 0 if absent."""
    status, body = server.get("/metrics")
    assert status == 200, body[:200]
    total = 0.0
    for family in text_string_to_metric_families(body.decode()):
        for found in family.samples:
            if found.name == sample and all(found.labels.get(k) == v for k, v in labels.items()):
                total += found.value
    return total


def wait_for(condition: Callable[[], Any], *, timeout_s: float, interval_s: float = 0.1,
             what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy; return its value or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except (OSError, ValueError, KeyError) as error:
            last_error = error
        time.sleep(interval_s)
    raise AssertionError(f"{what} not reached within {timeout_s} s (last error: {last_error!r})")


def rss_kb(pid: int) -> int:
    """Resident set size of a process, from /proc (kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for {pid}")


def write_toml(path: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(str(v) if isinstance(v, Path) else v)}" for key, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class Process:
    """A carbongate process (feed, governance) with its output in a log file or a pipe.

    ``output="pipe"`` keeps the output off the filesystem (lines collected in
    memory): the file-size fault must hit the ledger, not the process's log.
    """

    def __init__(self, name: str, command: list[str], *, directory: Path,
                 env: Mapping[str, str] | None = None, clean_env: bool = False,
                 output: str = "file") -> None:
        self.name = name
        self.command = command
        self.log_path = directory / f"{name}.log"
        base = dict(env or {}) if clean_env else {**os.environ, **(env or {})}
        self._env = {**base, "PYTHONUNBUFFERED": "1"}
        self._output = output
        self.lines: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Process:
        if self._output == "pipe":
            self.process = subprocess.Popen(self.command, cwd=ROOT, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, env=self._env)
            threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True).start()
        else:
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(self.command, cwd=ROOT, stdout=log,
                                                stderr=subprocess.STDOUT, env=self._env)
        self.starts += 1
        return self

    def _drain(self, pipe: Any) -> None:
        with pipe:
            for line in pipe:
                self.lines.append(line.decode(errors="replace").rstrip())

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, no file is closed, as with an OOM kill or a node loss."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM and the exit code (SIGKILL after 20 s)."""
        if self.process is None:
            return None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def log(self) -> str:
        if self._output == "pipe":
            return "\n".join(self.lines)
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def running(process: Process) -> Iterator[Process]:
    process.start()
    try:
        yield process
    finally:
        process.stop()


def carbongate(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "carbongate.cli", *arguments]


def http_json(url: str, timeout_s: float = 3) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
