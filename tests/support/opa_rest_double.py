"""A test double of the OPA server's published REST API, backed by OPA's own Go engine.

No OPA server can be installed in this environment (no network beyond the
package registries, and OPA ships as a Go binary, not a package), so the
OPA server engine is tested against this double. It speaks the subset of
the API documented at https://www.openpolicyagent.org/docs/rest-api that
carbongate and opa-python-client use, with OPA's status codes and error
bodies:

- "Data API": ``GET``/``POST /v1/data/{path}`` (``{"input": ...}`` in the
  body; ``{"result": ...}`` back, no ``result`` when undefined),
  ``PUT /v1/data/{path}`` (204), ``PATCH /v1/data/{path}`` (JSON Patch,
  204), ``DELETE /v1/data/{path}`` (204, 404 when missing);
- "Policy API": ``GET /v1/policies``, ``PUT``/``GET``/``DELETE /v1/policies/{id}``
  (400 ``invalid_parameter`` with an ``errors`` list located by file and
  row when the module set would not compile, 404 ``resource_not_found``);
- "Health API": ``GET /health``;
- "Authentication and authorization": like ``opa run --server
  --authentication=token --authorization=basic``, every request is allowed
  only if ``data.system.authz.allow`` holds for ``input.method``,
  ``input.path`` (segments), ``input.identity`` (the bearer token) and
  ``input.headers``; otherwise 401 ``unauthorized``.

Policies are evaluated by ``opa_bindings.OpaEngine`` (the same Go
evaluator OPA runs), rebuilt from scratch on each policy or data change
exactly as the server recompiles. Not reproduced: bundles, decision logs,
query parameters (``explain``, ``metrics``, ``pretty``), the ``ast`` of
policies, ``If-None-Match``.

As a process (``python -m tests.support.opa_rest_double [--port N]``, used
by ``bench/admission.py`` so that the double does not share the load
generator's GIL) it prints its URL on the first line of stdout and serves
until SIGTERM or SIGINT.

Fault knobs for tests: ``delay_ms`` (every response), ``fault`` (``"garbage"``
answers 200 with a non-JSON body, ``"error500"`` answers 500) and
:meth:`OpaRestDouble.stop` (closes the listening socket and every open
keep-alive connection). Every request is recorded in ``seen``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import unquote, urlsplit

import jsonpatch
from opa_bindings import OpaEngine, OpaError, OpaUndefinedError

Fault = Literal["none", "garbage", "error500"]
AUTHZ_POLICY_ID = "system/authz.rego"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOCATED = re.compile(r"^(?P<file>.+?):(?P<row>\d+): (?P<code>rego_\w+): (?P<message>.*)$")
_ERROR_HEADER = re.compile(r"^(?:bundle activation failed: )?\d+ errors? occurred:\s*")


@dataclass(frozen=True)
class SeenRequest:
    """One request as the double received it (for asserting on headers)."""

    method: str
    path: str
    authorization: str | None


class ApiError(Exception):
    """An OPA error reply: status, ``code``, ``message`` and optional ``errors``."""

    def __init__(self, status: HTTPStatus, code: str, message: str,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message}
        if details:
            self.body["errors"] = details


class OpaRestDouble:
    """An HTTP server on 127.0.0.1 (ephemeral port) answering like OPA; a context manager."""

    def __init__(self, *, authorization_policy: str | None = None, port: int = 0) -> None:
        self.delay_ms = 0
        self.fault: Fault = "none"
        self.seen: list[SeenRequest] = []
        self._lock = threading.RLock()
        self._policies: dict[str, str] = {}
        self._data: dict[str, Any] = {}
        self._authz = authorization_policy is not None
        if authorization_policy is not None:
            self._policies[AUTHZ_POLICY_ID] = authorization_policy
        self._engine = _compile(self._policies, self._data)
        self._connections: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", port), _handler_class(self))
        # A short poll interval: stop() (shutdown) waits for one poll.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        name="opa-rest-double", daemon=True)
        self._stopped = False

    # -- lifecycle --------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
        with self._lock:
            self._engine.close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop answering: close the listener and cut every keep-alive connection."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- state seen by tests ----------------------------------------------

    def policy_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._policies)

    def data(self) -> dict[str, Any]:
        with self._lock:
            copied: dict[str, Any] = json.loads(json.dumps(self._data))
            return copied

    # -- request handling (called from handler threads) -------------------

    def handle(self, method: str, target: str, headers: dict[str, str],
               body: bytes) -> tuple[HTTPStatus, Any]:
        """Route one request; returns (status, JSON body or None for 204)."""
        path = unquote(urlsplit(target).path)
        self._remember(SeenRequest(method, path, headers.get("authorization")))
        if self._authz:
            self._authorize(method, path, headers)
        if path == "/health" and method == "GET":
            return HTTPStatus.OK, {}
        if path == "/v1/policies" or path == "/v1/policies/":
            if method != "GET":
                raise _not_allowed(method, path)
            with self._lock:
                return HTTPStatus.OK, {"result": [
                    {"id": pid, "raw": raw} for pid, raw in sorted(self._policies.items())]}
        if path.startswith("/v1/policies/"):
            return self._policy(method, path.removeprefix("/v1/policies/"), body)
        if path == "/v1/data" or path.startswith("/v1/data/"):
            return self._data_api(method, _segments(path.removeprefix("/v1/data")), body)
        raise ApiError(HTTPStatus.NOT_FOUND, "resource_not_found", f"{path} not found")

    def _remember(self, request: SeenRequest) -> None:
        with self._lock:
            self.seen.append(request)

    def _authorize(self, method: str, path: str, headers: dict[str, str]) -> None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        request: dict[str, Any] = {
            "method": method, "path": [p for p in path.split("/") if p],
            "headers": {key.title(): [value] for key, value in headers.items()},
        }
        if scheme.lower() == "bearer" and token:
            request["identity"] = token
        with self._lock:
            try:
                allowed = self._engine.eval_document("system.authz.allow", request)
            except OpaError:
                allowed = False
        if allowed is not True:
            raise ApiError(HTTPStatus.UNAUTHORIZED, "unauthorized",
                           "request rejected by administrative policy")

    # -- Policy API -------------------------------------------------------

    def _policy(self, method: str, policy_id: str, body: bytes) -> tuple[HTTPStatus, Any]:
        with self._lock:
            if method == "GET":
                return HTTPStatus.OK, {"result": self._policy_record(policy_id)}
            if method == "PUT":
                self._recompile({**self._policies, policy_id: _text(body)}, self._data)
                return HTTPStatus.OK, {}
            if method == "DELETE":
                self._policy_record(policy_id)
                remaining = {k: v for k, v in self._policies.items() if k != policy_id}
                self._recompile(remaining, self._data)
                return HTTPStatus.OK, {}
        raise _not_allowed(method, policy_id)

    def _policy_record(self, policy_id: str) -> dict[str, str]:
        if policy_id not in self._policies:
            raise ApiError(HTTPStatus.NOT_FOUND, "resource_not_found",
                           f'storage_not_found_error: policy id "{policy_id}"')
        return {"id": policy_id, "raw": self._policies[policy_id]}

    # -- Data API ---------------------------------------------------------

    def _data_api(self, method: str, segments: list[str], body: bytes) -> tuple[HTTPStatus, Any]:
        if method in ("GET", "POST"):
            request = _json(body) if body.strip() else {}
            if not isinstance(request, dict):
                raise _malformed("request body must be an object")
            return HTTPStatus.OK, self._evaluate(segments, request.get("input"))
        with self._lock:
            if method == "PUT":
                self._recompile(self._policies, _with(self._data, segments, _json(body)))
            elif method == "PATCH":
                self._recompile(self._policies, _patched(self._data, segments, _json(body)))
            elif method == "DELETE":
                self._recompile(self._policies, _without(self._data, segments))
            else:
                raise _not_allowed(method, "/".join(segments))
        return HTTPStatus.NO_CONTENT, None

    def _evaluate(self, segments: list[str], input: Any) -> dict[str, Any]:
        with self._lock:
            try:
                return {"result": self._engine.eval_document(".".join(segments), input)}
            except OpaUndefinedError:
                return {}
            except OpaError as error:
                raise ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error",
                               error.message) from error

    def _recompile(self, policies: dict[str, str], data: dict[str, Any]) -> None:
        """Swap in a fresh engine for the new state, or raise and change nothing."""
        fresh = _compile(policies, data)
        previous, self._engine = self._engine, fresh
        self._policies, self._data = dict(policies), data
        previous.close()


def _compile(policies: dict[str, str], data: dict[str, Any]) -> OpaEngine:
    engine = OpaEngine()
    try:
        for policy_id, raw in policies.items():
            engine.add_policy(policy_id, raw)
        if data:
            engine.add_data(data, "")
        engine.eval_query("true")
    except OpaError as error:
        engine.close()
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter",
                       "error(s) occurred while compiling module(s)",
                       _details(error.message)) from error
    return engine


def _details(message: str) -> list[dict[str, Any]]:
    """The Go engine's error text as OPA's ``errors`` entries with locations."""
    details: list[dict[str, Any]] = []
    for raw in _ERROR_HEADER.sub("", message.strip()).splitlines():
        located = _LOCATED.match(_ERROR_HEADER.sub("", raw).strip())
        if located:
            details.append({
                "code": located["code"], "message": located["message"],
                "location": {"file": located["file"], "row": int(located["row"]), "col": 1},
            })
    return details or [{"code": "rego_compile_error", "message": message}]


def _segments(path: str) -> list[str]:
    segments = [s for s in path.split("/") if s]
    for segment in segments:
        if not _IDENTIFIER.match(segment):
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter",
                           f"invalid path segment {segment!r}")
    return segments


def _with(data: dict[str, Any], segments: list[str], value: Any) -> dict[str, Any]:
    if not segments:
        if not isinstance(value, dict):
            raise _malformed("root document must be an object")
        return value
    copied: dict[str, Any] = json.loads(json.dumps(data))
    node = copied
    for segment in segments[:-1]:
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise ApiError(HTTPStatus.NOT_FOUND, "resource_not_found",
                           f"storage_not_found_error: {'/'.join(segments)}: document missing")
        node = child
    node[segments[-1]] = value
    return copied


def _lookup(data: dict[str, Any], segments: list[str]) -> Any:
    node: Any = data
    for segment in segments:
        if not isinstance(node, dict) or segment not in node:
            raise ApiError(HTTPStatus.NOT_FOUND, "resource_not_found",
                           f"storage_not_found_error: /{'/'.join(segments)}: document missing")
        node = node[segment]
    return node


def _without(data: dict[str, Any], segments: list[str]) -> dict[str, Any]:
    _lookup(data, segments)
    if not segments:
        return {}
    copied: dict[str, Any] = json.loads(json.dumps(data))
    del _lookup(copied, segments[:-1])[segments[-1]]
    return copied


def _patched(data: dict[str, Any], segments: list[str], patch: Any) -> dict[str, Any]:
    target = _lookup(data, segments)
    try:
        result = jsonpatch.apply_patch(target, patch)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as error:
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", str(error)) from error
    return _with(data, segments, result)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise _malformed(f"body contains malformed input: {error}") from error


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _malformed("policy is not UTF-8") from error


def _malformed(message: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, "invalid_parameter", message)


def _not_allowed(method: str, path: str) -> ApiError:
    return ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "invalid_parameter",
                    f"method {method} not allowed on {path}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that timed out and hung up is a scenario here, not a bug."""


def _handler_class(double: OpaRestDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as OPA and the client's session expect
        timeout = 10

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle plus the
            # client's delayed ACK add 40 ms to every keep-alive exchange.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with double._lock:
                double._connections.add(self.connection)

        def finish(self) -> None:
            with double._lock:
                double._connections.discard(self.connection)
            super().finish()

        def do_GET(self) -> None:
            self._serve()

        do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if double.delay_ms:
                time.sleep(double.delay_ms / 1000)
            if double.fault == "garbage":
                self._reply(HTTPStatus.OK, b"<html>proxy says hello", "text/html")
            elif double.fault == "error500":
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR,
                           {"code": "internal_error", "message": "injected fault"})
            else:
                self._answer(body)

        def _answer(self, body: bytes) -> None:
            headers = {key.lower(): value for key, value in self.headers.items()}
            try:
                status, payload = double.handle(self.command, self.path, headers, body)
            except ApiError as error:
                self._json(error.status, error.body)
                return
            if payload is None:
                self._reply(status, b"", None)
            else:
                self._json(status, payload)

        def _json(self, status: HTTPStatus, payload: Any) -> None:
            self._reply(status, json.dumps(payload).encode(), "application/json")

        def _reply(self, status: HTTPStatus, body: bytes, content_type: str | None) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: pytest captures nothing useful from stderr access logs."""

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; the URL goes to stdout first, for whoever started us."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="OPA REST API test double (see the module docstring)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    arguments = parser.parse_args(argv)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    with OpaRestDouble(port=arguments.port) as double:
        print(double.url, flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
