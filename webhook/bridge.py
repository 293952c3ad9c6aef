"""The Flask (WSGI) app behind an event loop: whole requests only reach the decision threads.

gunicorn's asgi worker (webhook/worker.py) handshakes and parses headers in
its event loop. This bridge does the rest of the reading there too: it
buffers the whole body, at most ``max_body_bytes`` and within
``body_timeout_s``, and only then hands the complete request to one of
``threads`` decision threads (``loop.run_in_executor``). A client that sends
part of a body and stops holds a coroutine, never a thread: the API server's
reviews keep every decision thread.

A body that does not arrive whole is still answered by the app, with the
same JSON 400/413 as under gthread (``webhook/bodies.py`` reads what arrived,
then the stream raises what went wrong): the bridge decides *when* the body
is over, the app what to answer. A client gone mid-body gets nothing: there
is no one to answer.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _ClientGone(Exception):
    """The client closed the connection before its body was whole."""


@dataclass(frozen=True)
class _Body:
    """What the loop read of a request body, and why it stopped if not at the end."""

    data: bytes
    # Raised by the app's input after ``data``: TimeoutError (not whole in time).
    failure: BaseException | None = None
    complete: bool = True


class _Input(io.BytesIO):
    """The buffered body as ``wsgi.input``; at its end, the failure (if any) instead of EOF."""

    def __init__(self, body: _Body) -> None:
        super().__init__(body.data)
        self._failure = body.failure

    def read(self, size: int | None = -1) -> bytes:
        piece = super().read(size)
        if not piece and size != 0 and self._failure is not None:
            raise self._failure
        return piece


class WsgiBridge:
    """An ASGI app serving a WSGI app from a bounded pool, bodies read in the loop."""

    def __init__(self, app: WsgiApp, *, threads: int, max_body_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self._limit = max_body_bytes
        self._body_timeout_s = body_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decide")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan (the worker turns it off), no WebSocket: nothing to serve
        try:
            body = await self._read_body(scope, receive)
        except _ClientGone:
            return
        environ = _environ(scope, body)
        loop = asyncio.get_running_loop()
        status, headers, payload = await loop.run_in_executor(self._pool, _call, self.app, environ)
        if not body.complete:
            # Bytes of this body may still be on the way: the connection cannot carry
            # another request (gunicorn closes it; this says so to the client).
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _read_body(self, scope: Scope, receive: Receive) -> _Body:
        """The body, read whole within the time limit; over the limit, one byte past it."""
        declared = _content_length(scope)
        if declared is not None and declared > self._limit:
            return _Body(b"", complete=False)  # the app refuses it from the header alone (413)
        wanted = declared if declared is not None else self._limit + 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._body_timeout_s
        pieces: list[bytes] = []
        received = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                failure = TimeoutError(f"body not received whole within {self._body_timeout_s:g} s")
                return _Body(b"".join(pieces), failure=failure, complete=False)
            if message["type"] == "http.disconnect":
                raise _ClientGone
            piece = message.get("body", b"")
            pieces.append(piece)
            received += len(piece)
            if not message.get("more_body", False):
                return _Body(b"".join(pieces))
            if received >= wanted:
                # Over the limit (chunked: the app sees limit + 1 bytes and answers 413), or
                # more than Content-Length announced, which the parser does not let happen.
                return _Body(b"".join(pieces), complete=False)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the parser refuses such a request before it reaches an app
    return None


def _environ(scope: Scope, body: _Body) -> dict[str, Any]:
    """PEP 3333's environ for a request whose body is already in memory."""
    server = scope.get("server") or ("localhost", 443)
    client = scope.get("client") or ("", 0)
    path = scope["path"].encode("utf-8").decode("latin-1")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "https"),
        "wsgi.input": _Input(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    chunked = False
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_LENGTH":
            environ["CONTENT_LENGTH"] = value
        elif name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif name == "TRANSFER_ENCODING":
            chunked = chunked or "chunked" in value.lower()
        else:
            key = "HTTP_" + name
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    if chunked:
        environ["wsgi.input_terminated"] = True  # read to the end of the input
    return environ


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One WSGI call in a decision thread: status, headers and the whole response body."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        started[:] = [status, headers]
        return lambda _: None  # the write() callable; Flask never uses it

    result = app(environ, start_response)
    try:
        payload = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    if not any(name == b"content-length" for name, _ in encoded):
        encoded.append((b"content-length", str(len(payload)).encode()))
    return int(status.split(" ", 1)[0]), encoded, payload
