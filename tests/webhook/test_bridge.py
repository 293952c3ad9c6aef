"""webhook/bridge.py in-process: the body is read whole in the loop, the app answers as under gthread.

The ASGI side is played by hand (``receive`` hands out prepared messages or
waits forever, as a stalled client does); the WSGI app reads its body with
``webhook.bodies.read``, as carbongate's ``/mutate`` does, and says what it got.
The same paths over real sockets: tests/reliability/test_slow_clients.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from webhook import bodies, bridge

LIMIT = 100


def reading_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Reads the body as /mutate does and answers what happened, with the environ's essentials."""
    document: dict[str, Any]
    try:
        body = bodies.read(environ, limit=LIMIT, timeout_s=0.2)
        status, document = "200 OK", {"body": body.decode()}
    except bodies.TooLarge as error:
        status, document = "413 Request Entity Too Large", {"error": str(error)}
    except bodies.Unreadable as error:
        status, document = "400 Bad Request", {"error": str(error)}
    document.update(path=environ["PATH_INFO"], query=environ["QUERY_STRING"],
                    accept=environ.get("HTTP_ACCEPT"), length=environ.get("CONTENT_LENGTH"))
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(document).encode()]


def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/mutate", "query_string": b"a=1",
            "http_version": "1.1", "scheme": "https", "headers": headers,
            "server": ("127.0.0.1", 8443), "client": ("127.0.0.1", 50000)}


def serve(headers: list[tuple[bytes, bytes]], messages: list[dict[str, Any]],
          app: Callable[..., Iterable[bytes]] = reading_app) -> tuple[list[dict[str, Any]], int]:
    """Run one request through the bridge; what it sent, and how many times it asked for the body."""
    sent: list[dict[str, Any]] = []
    asked = [0]

    async def receive() -> dict[str, Any]:
        asked[0] += 1
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # a client that stopped sending
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    served = bridge.WsgiBridge(app, threads=2, max_body_bytes=LIMIT, body_timeout_s=0.2)
    asyncio.run(served(scope(headers), receive, send))
    return sent, asked[0]


def answer(sent: list[dict[str, Any]]) -> tuple[int, dict[bytes, bytes], dict[str, Any]]:
    start, body = sent
    return start["status"], dict(start["headers"]), json.loads(body["body"])


def test_a_body_in_pieces_reaches_the_app_whole_with_its_environ() -> None:
    sent, _ = serve([(b"content-length", b"11"), (b"accept", b"a"), (b"accept", b"b")],
                    [{"type": "http.request", "body": b"hello ", "more_body": True},
                     {"type": "http.request", "body": b"world", "more_body": False}])
    status, headers, document = answer(sent)
    assert status == 200 and document["body"] == "hello world"
    assert (document["path"], document["query"], document["accept"], document["length"]) == ("/mutate", "a=1",
                                                                                              "a,b", "11")
    assert headers[b"content-length"] == str(len(sent[1]["body"])).encode()
    assert b"connection" not in headers  # kept alive


def test_a_stalled_body_gets_the_apps_400_within_the_body_timeout_and_the_connection_closes() -> None:
    sent, _ = serve([(b"content-length", b"50")], [{"type": "http.request", "body": b"{\"a", "more_body": True}])
    status, headers, document = answer(sent)
    assert status == 400 and document["error"] == "body not received whole within 0.2 s"
    assert headers[b"connection"] == b"close"


def test_a_chunked_body_over_the_limit_gets_the_apps_413_after_one_byte_too_many() -> None:
    pieces = [{"type": "http.request", "body": b"x" * 60, "more_body": True} for _ in range(5)]
    sent, asked = serve([(b"transfer-encoding", b"chunked")], pieces)
    status, headers, document = answer(sent)
    assert status == 413 and "over 100 bytes" in document["error"]
    assert asked == 2  # stopped reading once past the limit
    assert headers[b"connection"] == b"close"


def test_a_content_length_over_the_limit_is_handed_over_without_reading_the_body() -> None:
    def refusing_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert int(environ["CONTENT_LENGTH"]) > LIMIT  # /mutate's first check: 413 from the header
        start_response("413 Request Entity Too Large", [("Content-Type", "application/json")])
        return [b"{}"]

    sent, asked = serve([(b"content-length", b"5000")], [], app=refusing_app)
    assert sent[0]["status"] == 413 and asked == 0


def test_a_client_gone_mid_body_is_not_answered() -> None:
    sent, _ = serve([(b"content-length", b"50")], [{"type": "http.request", "body": b"{", "more_body": True},
                                                   {"type": "http.disconnect"}])
    assert sent == []
