"""Reading a request body whole, within a size limit and a time limit.

The API server sends a review at once, with ``Content-Length``; anything
else is a client to be wary of. Without a bound on time, a body that stops
arriving (or a chunk declared ``ffffffffffffffffffff`` bytes long and never
sent) holds a worker thread for as long as the client keeps the connection
open. Without catching the server's own parse errors, a malformed chunk
becomes an HTML 500. Here every way a body can fail to arrive becomes
``Unreadable`` (HTTP 400) or ``TooLarge`` (HTTP 413), in bounded time.

Under gunicorn the connection's socket is in the WSGI environ
(``gunicorn.socket``): each read is given the time left as the socket's
timeout, and the previous timeout is put back after. Elsewhere (Flask's test
client) the input never blocks and only the size limit matters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

PIECE_BYTES = 64 * 1024


class Unreadable(ValueError):
    """The body did not arrive whole: malformed chunked encoding, a stall, a disconnect."""


class TooLarge(ValueError):
    """The body is longer than the limit (found while reading a chunked body)."""


def read(environ: Mapping[str, Any], *, limit: int, timeout_s: float,
         monotonic: Callable[[], float] = time.monotonic) -> bytes:
    """The whole body: at most ``limit`` bytes, all of it within ``timeout_s``.

    With ``Content-Length`` (already checked against ``limit``) exactly that
    many bytes are read; a chunked body (the server decodes it and marks the
    input terminated) is read to its end, and one byte past ``limit`` is
    ``TooLarge``. Without either there is no body to read.
    """
    stream = environ["wsgi.input"]
    declared = _content_length(environ)
    if declared is None and not environ.get("wsgi.input_terminated"):
        return b""
    wanted = declared if declared is not None else limit + 1
    deadline = monotonic() + timeout_s
    pieces: list[bytes] = []
    received = 0
    with _socket_timeouts(environ.get("gunicorn.socket")) as set_timeout:
        while received < wanted:
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise Unreadable(f"body not received whole within {timeout_s:g} s")
            set_timeout(remaining)
            piece = _read_piece(stream, min(PIECE_BYTES, wanted - received), timeout_s)
            if not piece:
                break
            pieces.append(piece)
            received += len(piece)
    if declared is None and received > limit:
        raise TooLarge(f"body over {limit} bytes")
    if declared is not None and received < declared:
        raise Unreadable(f"body ended after {received} of the {declared} bytes of its Content-Length")
    return b"".join(pieces)


def _read_piece(stream: Any, size: int, timeout_s: float) -> bytes:
    """One read; the server's own errors (gunicorn's chunk parser) become ``Unreadable``."""
    try:
        piece: bytes = stream.read(size)
    except TimeoutError as error:
        raise Unreadable(f"body not received whole within {timeout_s:g} s") from error
    except Exception as error:  # the server's parse errors have no common base worth naming
        detail = str(error) or type(error).__name__
        raise Unreadable(f"body could not be read: {detail[:200]}") from error
    return piece


def _content_length(environ: Mapping[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH")
    try:
        return max(int(raw), 0) if raw not in (None, "") else None
    except ValueError:
        return None


@contextmanager
def _socket_timeouts(sock: Any) -> Iterator[Callable[[float], None]]:
    """A setter for the socket's timeout during the read; the old one restored after."""
    if sock is None or not hasattr(sock, "settimeout"):
        yield lambda _: None
        return
    previous = sock.gettimeout()
    try:
        yield sock.settimeout
    finally:
        try:
            sock.settimeout(previous)
        except OSError:  # the client is gone: nothing left to restore
            pass
