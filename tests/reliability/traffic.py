"""Admission traffic against the real webhook, as the API server sends it, with every outcome kept.

Each client thread holds one keep-alive HTTPS connection (the API server
reuses its connections) and posts tier-3 Pod reviews back to back. Every
request is recorded with when it was sent and how it ended:

- ``ok``: HTTP 200, a well-formed AdmissionReview response echoing the uid, allowed;
- ``http``: any other status (a 5xx here would be a dropped admission made visible);
- ``malformed``: 200 with a body that is not a correct response (``checks.response_problems``);
- ``transport``: no response at all (refused, reset, closed mid-way, timed out).

With ``retry`` a transport failure is sent once more on a new connection, as
a caller that retries would: ``retried_ok`` says whether that got an ``ok``.

:func:`partial_request` and :func:`worker_holding` let a test hold one
request half-sent and find the gunicorn worker holding it, so a fault hits
a request that is provably in flight rather than one that might be.
"""

from __future__ import annotations

import copy
import http.client
import json
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tests.reliability import checks, servers
from tests.support import webhook_server

Kind = Literal["ok", "http", "malformed", "transport"]
TEMPLATE = servers.tier3_review("template")


def review_bytes(uid: str) -> bytes:
    document = copy.deepcopy(TEMPLATE)
    document["request"]["uid"] = uid
    return json.dumps(document).encode()


@dataclass
class Outcome:
    uid: str
    sent_at: float  # time.monotonic() when the request started on the wire
    ended_at: float
    kind: Kind
    detail: str = ""
    retried_ok: bool | None = None


def classify(status: int, body: bytes, uid: str) -> tuple[Kind, str]:
    if status != 200:
        return "http", f"{status} {body[:120]!r}"
    try:
        document = json.loads(body)
    except ValueError:
        return "malformed", f"not JSON: {body[:120]!r}"
    problems = checks.response_problems(document, uid)
    if problems or document["response"].get("allowed") is not True:
        return "malformed", "; ".join(problems) or "not allowed"
    return "ok", ""


class Client:
    """One keep-alive HTTPS connection to the webhook."""

    def __init__(self, server: webhook_server.RunningWebhook, *, timeout_s: float = 10) -> None:
        host, port = server.url.removeprefix("https://").split(":")
        self._address = (host, int(port))
        self._context = server.context()
        self._timeout_s = timeout_s
        self._connection: http.client.HTTPSConnection | None = None

    def post(self, uid: str) -> tuple[Kind, str]:
        """One review; a failure leaves no connection behind (the next post reconnects)."""
        if self._connection is None:
            self._connection = http.client.HTTPSConnection(*self._address, context=self._context,
                                                           timeout=self._timeout_s)
        try:
            self._connection.request("POST", "/mutate", body=review_bytes(uid),
                                     headers={"Content-Type": "application/json"})
            response = self._connection.getresponse()
            body = response.read()
            if response.getheader("Connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return "transport", f"{type(error).__name__}: {error}"
        return classify(response.status, body, uid)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class Traffic:
    """``threads`` clients posting reviews until stopped; every outcome in ``outcomes``."""

    def __init__(self, server: webhook_server.RunningWebhook, *, threads: int = 4, retry: bool = False,
                 name: str = "load", pause_s: float = 0.0) -> None:
        self._server = server
        self._retry = retry
        self._name = name
        self._pause_s = pause_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True, name=f"{name}-{n}")
                         for n in range(threads)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def kinds(self) -> Counter[str]:
        with self._lock:
            return Counter(outcome.kind for outcome in self.outcomes)

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def _run(self, number: int) -> None:
        client = Client(self._server)
        sequence = 0
        while not self._stop.is_set():
            sequence += 1
            uid = f"{self._name}-{number}-{sequence}"
            sent_at = time.monotonic()
            kind, detail = client.post(uid)
            outcome = Outcome(uid, sent_at, time.monotonic(), kind, detail)
            if kind == "transport" and self._retry:
                outcome.retried_ok = client.post(uid)[0] == "ok"
            with self._lock:
                self.outcomes.append(outcome)
            if kind == "transport" and not self._retry:
                time.sleep(0.05)  # a refused connect returns at once: do not spin
            if self._pause_s:
                time.sleep(self._pause_s)
        client.close()


class PartialRequest:
    """A POST /mutate whose headers and first half of the body are sent; the rest on :meth:`finish`."""

    def __init__(self, server: webhook_server.RunningWebhook, uid: str) -> None:
        host, port = server.url.removeprefix("https://").split(":")
        self.uid = uid
        self.body = review_bytes(uid)
        raw = socket.create_connection((host, int(port)), timeout=30)
        self.sock: ssl.SSLSocket = server.context().wrap_socket(raw, server_hostname=host)
        head = (f"POST /mutate HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(self.body)}\r\n\r\n").encode()
        self.sock.sendall(head + self.body[: len(self.body) // 2])

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def finish(self) -> tuple[Kind, str]:
        """Send the rest and read the answer (or the failure to get one)."""
        try:
            self.sock.sendall(self.body[len(self.body) // 2:])
            response = http.client.HTTPResponse(self.sock)
            response.begin()
            return classify(response.status, response.read(), self.uid)
        except (OSError, http.client.HTTPException) as error:
            return "transport", f"{type(error).__name__}: {error}"
        finally:
            self.sock.close()


def partial_request(server: webhook_server.RunningWebhook, uid: str) -> PartialRequest:
    return PartialRequest(server, uid)


def _socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server side of the TCP connection from ``client_port`` (from /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        if local_port == server_port and remote_port == client_port:
            return fields[9]
    return None


def worker_holding(server: webhook_server.RunningWebhook, client_port: int) -> int | None:
    """The pid of the gunicorn worker that accepted the connection from ``client_port``, if any yet."""
    inode = _socket_inode(int(server.url.rsplit(":", 1)[1]), client_port)
    if inode is None or inode == "0":
        return None
    target = f"socket:[{inode}]"
    for pid in server.worker_pids():
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if descriptor.readlink().as_posix() == target:
                    return pid
            except OSError:
                continue
    return None


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts by kind, transport failures by exception (refused connect, reset, ...)."""
    kinds: Counter[str] = Counter(outcome.kind for outcome in outcomes)
    failures = Counter(o.detail.split(":")[0] for o in outcomes if o.kind == "transport")
    return {"requests": len(outcomes), **kinds, "transport_by_error": dict(failures)}
