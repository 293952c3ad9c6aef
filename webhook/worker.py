"""gunicorn's asyncio worker with the timeouts an admission webhook needs.

gunicorn 27's ``asgi`` worker handshakes TLS and parses HTTP in its event
loop, so a client that stops halfway holds a coroutine, not a thread (the
``gthread`` worker handshakes and reads in the threads that decide). What it
lacks, and this subclass adds:

- a **handshake timeout** (``webhook.handshake_timeout_s``): asyncio's
  ``ssl_handshake_timeout``, which gunicorn leaves at asyncio's 60 s and
  offers no setting for, so the servers are created here;
- a **header timeout** (``webhook.header_timeout_s``): gunicorn waits for a
  connection's first request without any limit and for a kept-alive one's
  next headers as long as ``keepalive``; here the headers must be whole
  within the timeout of the handshake's end (or of the request's first
  byte on a kept-alive connection), or the connection is dropped;
- **TLS alerts**: a refused handshake (TLS below 1.2, no or a wrong client
  certificate) ends with the alert that says why, not a bare EOF;
- **JSON refusals**: gunicorn's own 400/414/431/501 (a malformed request
  line, header or chunk) get the JSON body and the count of the app's;
- **no plaintext fallback**: gunicorn serves without TLS when its SSL
  context cannot be built (it logs and goes on); here gunicorn stops;
- **certificate renewal**: gthread built a context for every connection
  and so read renewed files at once; here the one context reloads the
  chain when the files change (checked every second);
- a **connection cap** (``webhook.max_connections``): one connection past it is
  closed as it arrives, and counted;
- **a prompt graceful stop**: on SIGTERM, idle kept-alive connections are
  closed at once; gunicorn would wait ``graceful_timeout`` for them.

The body is read by webhook/bridge.py, also in the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import ssl
from asyncio import selector_events, sslproto
from http import HTTPStatus
from pathlib import Path
from typing import Any

from gunicorn import sock as gunicorn_sock
from gunicorn.arbiter import Arbiter
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers.gasgi import ASGIWorker

from carbongate import files
from carbongate import settings as settings_mod

HEARTBEAT_S = 1.0
_STATUSES = {status.value for status in HTTPStatus}


class _Protocol(ASGIProtocol):  # type: ignore[misc]
    """One connection: its request headers must be whole within the header timeout."""

    def __init__(self, worker: WebhookWorker) -> None:
        super().__init__(worker)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        # With TLS this runs once the handshake is done: the first request's clock starts.
        full = len(self.worker.connections) >= self.worker.max_connections
        self.worker.connections.add(self)
        super().connection_made(transport)
        if full:
            from webhook import metrics  # in the worker only: the master creates no metric files

            metrics.CONNECTIONS_REFUSED.inc()
            self.log.debug("%d connections open already: connection closed", self.worker.max_connections)
            self.drop()
            return
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._current_request is None and not self._closed:
            self._arm_header_timer()  # the first bytes of a kept-alive connection's next request
        super().data_received(data)

    def _on_headers_complete(self) -> Any:
        self._cancel_header_timer()
        return super()._on_headers_complete()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_header_timer()
        self.worker.connections.discard(self)
        super().connection_lost(exc)

    def _send_error_response(self, status: int, message: str, extra_headers: Any = ()) -> None:
        """gunicorn's own refusals (a malformed request line, header or chunk) as JSON,
        counted, as the app's: one shape of error for every client."""
        from webhook import metrics  # in the worker only: the master creates no metric files

        metrics.BAD_REQUESTS.inc()
        body = json.dumps({"error": message}, separators=(",", ":")).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
        head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase if status in _STATUSES else 'Error'}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}"
                "Connection: close\r\n\r\n")
        self._safe_write(head.encode("latin-1") + body)

    @property
    def idle(self) -> bool:
        """Waiting for a request of which nothing has arrived, no app call running."""
        return bool(self._awaiting_request and self._header_timer is None and not self._finishing_calls)

    def drop(self) -> None:
        """Close at once (no TLS close_notify exchange) and wake the connection's task."""
        self._cancel_header_timer()
        if self.transport is not None:
            self.transport.abort()
        if self._request_ready is not None:
            self._request_ready.set()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.worker.loop.call_later(self.worker.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        self.log.debug("request headers not whole within %g s: connection dropped", self.worker.header_timeout_s)
        self.drop()


class _AlertingSSLProtocol(sslproto.SSLProtocol):
    """asyncio's TLS, sending the alert that says why a handshake failed.

    Python 3.11's asyncio drops the connection on a failed handshake without
    writing the alert OpenSSL produced: a client refused for its TLS version
    or its certificate saw only an EOF, and the API server logs that instead
    of "unknown certificate authority".
    """

    # asyncio's private members (not in typeshed): Python 3.11's sslproto._do_handshake,
    # with the outgoing data written on a failure too.
    def _do_handshake(self) -> None:
        try:
            self._sslobj.do_handshake()  # type: ignore[attr-defined]
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            self._process_outgoing()  # type: ignore[attr-defined]
        except ssl.SSLError as error:
            self._process_outgoing()  # type: ignore[attr-defined]  # the alert, before the connection goes
            self._on_handshake_complete(error)
        else:
            self._on_handshake_complete(None)


class _Loop(asyncio.SelectorEventLoop):
    """The worker's event loop: its TLS connections use ``_AlertingSSLProtocol``."""

    def _make_ssl_transport(self, rawsock: Any, protocol: Any, sslcontext: Any, waiter: Any = None, *,
                            server_side: bool = False, server_hostname: Any = None, extra: Any = None,
                            server: Any = None, ssl_handshake_timeout: Any = None,
                            ssl_shutdown_timeout: Any = None) -> Any:
        ssl_protocol = _AlertingSSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout)
        selector_events._SelectorSocketTransport(  # type: ignore[attr-defined]
            self, rawsock, ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport


_LOOP_PARAMETERS = ("rawsock", "protocol", "sslcontext", "waiter", "server_side", "server_hostname", "extra",
                    "server", "ssl_handshake_timeout", "ssl_shutdown_timeout")
_PROTOCOL_PARAMETERS = ("loop", "app_protocol", "sslcontext", "waiter", "server_side", "server_hostname",
                        "ssl_handshake_timeout", "ssl_shutdown_timeout")


def alerting_loop_fits() -> bool:
    """Whether this Python's asyncio has the private shape ``_Loop`` was written against.

    ``_Loop`` replaces private asyncio members of Python 3.11-3.13; CPython fixed
    the missing alert itself (gh-98078), and a later asyncio may change those
    members. Where they are not as expected the stock loop serves (refusals end
    in an EOF instead of the alert) rather than every TLS connection failing.
    """
    try:
        made = inspect.signature(asyncio.SelectorEventLoop._make_ssl_transport).parameters  # type: ignore[attr-defined]
        protocol = inspect.signature(sslproto.SSLProtocol.__init__).parameters
    except (AttributeError, TypeError, ValueError):
        return False
    members = all(hasattr(sslproto.SSLProtocol, name)
                  for name in ("_do_handshake", "_process_outgoing", "_on_handshake_complete"))
    return (members and hasattr(selector_events, "_SelectorSocketTransport")
            and all(name in made for name in _LOOP_PARAMETERS)
            and all(name in protocol for name in _PROTOCOL_PARAMETERS))


class WebhookWorker(ASGIWorker):  # type: ignore[misc]
    """The asgi worker with handshake and header timeouts (set by ``worker_class``)."""

    handshake_timeout_s = 5.0
    header_timeout_s = 5.0
    max_connections = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[_Protocol] = set()
        self._certificates: _Certificates | None = None

    def _setup_event_loop(self) -> None:
        self.loop: asyncio.AbstractEventLoop
        if alerting_loop_fits():
            self.loop = _Loop()
        else:
            self.log.info("asyncio's TLS internals differ from Python 3.11-3.13's: stock event loop "
                          "(a refused handshake may end without its alert)")
            self.loop = asyncio.SelectorEventLoop()
        asyncio.set_event_loop(self.loop)

    async def _serve(self) -> None:
        """gunicorn's ``_serve`` without lifespan (off), with our protocol and timeouts."""
        context = self._get_ssl_context()
        if context is not None:
            self._certificates = _Certificates(context, Path(self.cfg.certfile), Path(self.cfg.keyfile))
        for listener in self.sockets:
            server = await self.loop.create_server(
                lambda: _Protocol(self), sock=listener.sock, ssl=context,
                ssl_handshake_timeout=self.handshake_timeout_s if context is not None else None,
                start_serving=True)
            self.servers.append(server)
            self.log.info("serving on %s", listener)
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
            if self._certificates is not None:
                self._certificates.reload_if_changed(self.log)
            await asyncio.sleep(HEARTBEAT_S)
        for server in self.servers:
            server.close()  # no new connections from here on
        for connection in list(self.connections):
            if connection.idle:
                connection.drop()
        await self._shutdown()

    def _get_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context, or the worker fails: never serve plaintext because TLS broke."""
        if not self.cfg.is_ssl:
            return None
        try:
            context: ssl.SSLContext = gunicorn_sock.ssl_context(self.cfg)
        except Exception as error:  # a missing file, a key that does not match, a bad CA bundle
            self.log.error("TLS cannot be set up, not serving: %s", error)
            raise SystemExit(Arbiter.WORKER_BOOT_ERROR) from error  # gunicorn stops, as at a boot error
        return context


class _Certificates:
    """The serving certificate and key, loaded again into the live context when they change."""

    def __init__(self, context: ssl.SSLContext, certfile: Path, keyfile: Path) -> None:
        self._context = context
        self._watches = (files.FileWatch(certfile), files.FileWatch(keyfile))
        for watch in self._watches:  # the versions the context was built from
            if (version := watch.changed()) is not None:
                watch.take(version)

    def reload_if_changed(self, log: Any) -> None:
        changed = [watch.changed() for watch in self._watches]
        if not any(changed):
            return
        versions = [found or files.stamp(watch.path) for found, watch in zip(changed, self._watches, strict=True)]
        if None in versions:
            return  # one of the pair missing mid-rotation: wait for both
        certfile, keyfile = (str(watch.path) for watch in self._watches)
        try:
            # Tried on a scratch context first: a failed load can leave a context with a
            # certificate and no matching key. New handshakes take the chain from the
            # context; open connections keep theirs.
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile=certfile, keyfile=keyfile)
            self._context.load_cert_chain(certfile=certfile, keyfile=keyfile)
        except (OSError, ssl.SSLError, ValueError) as error:
            # Said once; tried again at the next change (a half-written pair becomes whole).
            log.warning("serving certificate not reloaded (kept the previous one): %s", error)
        else:
            log.info("serving certificate reloaded from %s", certfile)
        for watch, version in zip(self._watches, versions, strict=True):
            if version is not None:
                watch.take(version)


def worker_class(web: settings_mod.WebhookSettings) -> type[WebhookWorker]:
    """The worker class with this configuration's timeouts (gunicorn takes a class)."""
    return type("WebhookWorker", (WebhookWorker,), {
        "handshake_timeout_s": web.handshake_timeout_s, "header_timeout_s": web.header_timeout_s,
        "max_connections": web.max_connections})
