"""The OPA server engine: the same policies, evaluated by an OPA sidecar over REST.

Speaks OPA's published REST API through ``opa_client.OpaClient``
(opa-python-client), one keep-alive session per engine:

- decisions: ``POST /v1/data/carbongate/admission/decision`` with
  ``{"input": ...}``; a reply without ``result`` means undefined (None);
- data: ``PUT /v1/data/carbongate/<root>`` replaces the whole document, which
  is exactly ``put_data``'s contract (no fresh-engine dance needed here);
- policies: ``PUT /v1/policies/<id>`` per file, ids under ``carbongate-policy/``
  so that policies carbongate does not own (``system/authz``) are never
  touched; the directory's ``data.json`` files go to their data paths;
- health: ``GET /health``.

OPA compiles the whole module set on every ``PUT``, so a file that calls a
function added in another file may be refused until that file arrives:
changes are applied until no further one succeeds. If any is still refused
(400, a compile error), everything applied in this round is undone and
:class:`errors.PolicyCompileError` is raised: the server keeps the previous
policies, as the embedded engine does.

Retries are off: the webhook has a 250 ms decision deadline and fails open,
so a retry with back-off would only turn one slow answer into a later one.
The bearer token travels in the session's headers and is never logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypedDict
from urllib.parse import urlsplit

import requests
from opa_client import OpaClient
from opa_client import errors as client_errors

from carbongate import opa_data
from policy_engine import engine, errors, loader, metrics, watcher

log = logging.getLogger(__name__)

ENGINE_LABEL: Final = "opa"
POLICY_ID_PREFIX: Final = "carbongate-policy/"
_INVALID: Final = "invalid_parameter"
# Exceptions opa_client lets through from requests and from decoding replies.
_TRANSPORT = (requests.RequestException, ValueError)


class OpaErrorLocation(TypedDict, total=False):
    file: str
    row: int
    col: int


class OpaErrorDetail(TypedDict, total=False):
    """One entry of ``errors`` in OPA's error body."""

    code: str
    message: str
    location: OpaErrorLocation


@dataclass(frozen=True)
class OpaAddress:
    """Where the OPA REST API listens, parsed once from ``EngineSettings.opa_url``."""

    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_address(url: str) -> OpaAddress:
    """``http://127.0.0.1:8181`` -> OpaAddress; a clear error for anything else.

    opa-python-client builds ``<scheme>://<host>:<port>/v1``: a path prefix
    cannot be honoured, and credentials in the URL would end up in logs.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.EngineConfigError(f"OPA URL {url!r} must look like http://host:port")
    if parts.username or parts.password:
        raise errors.EngineConfigError(
            "OPA URL must not hold credentials: name the token's environment variable "
            "in engine.opa_token_env")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise errors.EngineConfigError(f"OPA URL {url!r}: only scheme, host and port are used")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise errors.EngineConfigError(f"OPA URL {url!r}: {error}") from error
    return OpaAddress(parts.scheme, parts.hostname, port)


@dataclass(frozen=True)
class _Change:
    """Put ``source`` at ``policy_id``, or delete it when ``source`` is None."""

    policy_id: str
    source: str | None


class _Refused(Exception):
    """OPA answered 400: the module set would not compile."""

    def __init__(self, problems: Sequence[errors.CompileProblem]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = tuple(problems)


class OpaServerEngine:
    """A :class:`policy_engine.engine.PolicyEngine` backed by an OPA server."""

    def __init__(
        self,
        *,
        url: str,
        policy_dir: Path,
        token: str | None = None,
        timeout_s: float = 0.5,
    ) -> None:
        self._address = parse_address(url)
        self._policy_dir = Path(policy_dir)
        self._timeout_s = timeout_s
        self._client = OpaClient(
            host=f"[{self._address.host}]" if ":" in self._address.host else self._address.host,
            port=self._address.port,
            ssl=self._address.scheme == "https",
            token=token,
            retries=0,
            timeout=timeout_s,
        )
        self._data = opa_data.OpaDataClient(url=self._address.url, token=token, timeout_s=timeout_s)
        self._reload_lock = threading.Lock()
        self._version = ""
        self._digest: str | None = None
        self._pushed: tuple[str, ...] = ()
        self._watcher: watcher.PolicyWatcher | None = None

    def __repr__(self) -> str:
        return f"OpaServerEngine(url={self._address.url!r}, version={self._version!r})"

    @property
    def url(self) -> str:
        return self._address.url

    # -- PolicyEngine -----------------------------------------------------

    @property
    def version(self) -> str:
        return self._version

    @property
    def ready(self) -> bool:
        """Reachable, holding our policies and a grid document (OPA forgets both on restart)."""
        if not self._client.check_health():
            return False
        try:
            self._client.get_data(f"{engine.DATA_PREFIX}/grid")
        except (client_errors.PolicyNotFoundError, *_TRANSPORT):
            return False
        return not self._policies_missing()

    def evaluate(self, path: str, input: Mapping[str, Any], *, wait_s: float | None = None) -> Any | None:
        # ``wait_s`` needs nothing here: no engine is queued for in this process, and the
        # HTTP timeout (engine.opa_timeout_s) bounds the whole call.
        dotted = engine.dotted_path(path)
        started = time.perf_counter()
        try:
            body = self._client.query_rule(input_data=dict(input), package_path=dotted)
            if not isinstance(body, dict):
                raise TypeError(f"reply is {type(body).__name__}, not a JSON object")
            return body.get("result")
        except requests.Timeout as error:
            metrics.EVAL_ERRORS.labels(ENGINE_LABEL).inc()
            raise errors.PolicyEvaluationError(
                f"{path}: OPA at {self.url} did not answer within {self._timeout_s}s") from error
        except requests.JSONDecodeError as error:
            metrics.EVAL_ERRORS.labels(ENGINE_LABEL).inc()
            raise errors.PolicyEvaluationError(
                f"{path}: OPA at {self.url} answered a body that is not JSON") from error
        except (*_TRANSPORT, TypeError) as error:
            metrics.EVAL_ERRORS.labels(ENGINE_LABEL).inc()
            raise errors.PolicyEvaluationError(f"{path}: OPA at {self.url}: {error}") from error
        finally:
            metrics.EVAL_SECONDS.labels(ENGINE_LABEL).observe(time.perf_counter() - started)

    def put_data(self, root: str, value: Mapping[str, Any]) -> None:
        root = engine.check_data_root(root)
        try:
            self._put_data(f"{engine.DATA_PREFIX}/{root}", engine.json_document(value))
        except errors.PolicyEngineError:
            metrics.DATA_UPDATES.labels(ENGINE_LABEL, root, "error").inc()
            raise
        metrics.DATA_UPDATES.labels(ENGINE_LABEL, root, "ok").inc()

    def reload_policies(self) -> str:
        with self._reload_lock:
            try:
                policies = loader.load(self._policy_dir)
                self._push(policies)
            except errors.PolicyCompileError:
                metrics.COMPILE_ERRORS.inc()
                metrics.POLICY_RELOADS.labels("error").inc()
                raise
            except errors.PolicyEngineError:
                metrics.POLICY_RELOADS.labels("error").inc()
                raise
            self._version = policies.version
            self._digest = policies.digest
            self._pushed = tuple(sorted(_policy_id(module.path) for module in policies.modules))
        metrics.POLICY_RELOADS.labels("ok").inc()
        return policies.version

    def start_watching(self, interval_s: float) -> None:
        if self._watcher is None:
            self._watcher = watcher.PolicyWatcher(
                directory=self._policy_dir, reload=self.reload_policies, interval_s=interval_s,
                loaded=self._digest, stale=self._policies_missing)
            self._watcher.start()

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        self._client.close_connection()
        self._data.close()

    def wait_until_reachable(self, wait_s: float) -> None:
        """Block at most ``wait_s`` for ``GET /health``; raise EngineUnavailableError after."""
        try:
            self._client.wait_for_ready(timeout=wait_s, interval=min(0.2, max(wait_s, 0.01)))
        except client_errors.ConnectionsError as error:
            raise errors.EngineUnavailableError(
                f"OPA server at {self.url} is not reachable (GET /health failed for "
                f"{wait_s}s): start the OPA sidecar or fix engine.opa_url") from error

    # -- policies ---------------------------------------------------------

    def _push(self, policies: loader.PolicySet) -> None:
        """Make the server's carbongate modules and config equal the directory, or change nothing."""
        previous = self._server_policies()
        previous_data = {doc.data_path: self._server_data(doc.data_path)
                         for doc in policies.documents}
        desired = {_policy_id(module.path): module.source for module in policies.modules}
        changes = [_Change(pid, source) for pid, source in desired.items()
                   if previous.get(pid) != source]
        changes += [_Change(pid, None) for pid in previous if pid not in desired]
        for document in policies.documents:
            self._put_data(document.data_path.replace(".", "/"), dict(document.value))
        applied, refused = self._apply(changes)
        if refused:
            self._undo(applied, previous, previous_data)
            raise errors.PolicyCompileError(
                f"OPA at {self.url} refused the policies in {policies.directory}; "
                "the previous policies keep answering", refused)

    def _apply(self, changes: Sequence[_Change]) -> tuple[list[_Change], list[errors.CompileProblem]]:
        """Apply changes until none further succeeds; return (applied, problems of the rest)."""
        pending, applied = list(changes), []
        problems: list[errors.CompileProblem] = []
        while pending:
            problems, still = [], []
            for change in pending:
                try:
                    self._change(change)
                    applied.append(change)
                except _Refused as refusal:
                    problems.extend(refusal.problems)
                    still.append(change)
            if len(still) == len(pending):
                break
            pending = still
        return applied, problems if pending else []

    def _undo(self, applied: Sequence[_Change], previous: Mapping[str, str],
              previous_data: Mapping[str, Any | None]) -> None:
        inverse = [_Change(change.policy_id, previous.get(change.policy_id))
                   for change in reversed(applied)]
        _, problems = self._apply(inverse)
        for problem in problems:
            log.error("could not restore policy on OPA at %s: %s", self.url, problem)
        for data_path, value in previous_data.items():
            slash = data_path.replace(".", "/")
            try:
                if value is None:
                    self._client.delete_data(slash)
                else:
                    self._put_data(slash, value)
            except (errors.PolicyEngineError, client_errors.DeleteDataError, TypeError,
                    *_TRANSPORT) as error:
                log.error("could not restore data.%s on OPA at %s: %s", data_path, self.url, error)

    def _change(self, change: _Change) -> None:
        try:
            if change.source is None:
                self._client.delete_policy(change.policy_id)
            else:
                self._client.update_policy_from_string(change.source, change.policy_id,
                                                       rego_compat=False)
        except (client_errors.RegoParseError, client_errors.DeletePolicyError) as error:
            if error.expression != _INVALID:
                raise errors.EngineUnavailableError(
                    f"OPA at {self.url} refused {change.policy_id}: {error.expression}: "
                    f"{error.message}") from error
            raise _Refused(_problems(getattr(error, "errors", []), error.message)) from error
        except _TRANSPORT as error:
            raise errors.EngineUnavailableError(
                f"OPA at {self.url} while writing {change.policy_id}: {error}") from error

    def _server_policies(self) -> dict[str, str]:
        """Source of every module carbongate owns on the server."""
        try:
            ids = [pid for pid in self._client.get_policies_list()
                   if pid.startswith(POLICY_ID_PREFIX)]
            return {pid: self._client.get_policy(pid)["result"]["raw"] for pid in ids}
        except (*_TRANSPORT, KeyError, TypeError, client_errors.PolicyNotFoundError) as error:
            raise errors.EngineUnavailableError(
                f"OPA at {self.url}: cannot list policies: {error}") from error

    def _policies_missing(self) -> bool:
        """True when the server lost modules we pushed (an OPA restart): push again."""
        if not self._pushed:
            return False
        try:
            self._client.get_policy(self._pushed[0])
        except client_errors.PolicyNotFoundError:
            return True
        except _TRANSPORT:
            return False
        return False

    # -- data -------------------------------------------------------------

    def _server_data(self, data_path: str) -> Any | None:
        try:
            return self._client.get_data(data_path.replace(".", "/")).get("result")
        except client_errors.PolicyNotFoundError:
            return None
        except _TRANSPORT as error:
            raise errors.EngineUnavailableError(
                f"OPA at {self.url}: cannot read data.{data_path}: {error}") from error

    def _put_data(self, slash_path: str, value: dict[str, Any]) -> None:
        try:
            self._data.put(slash_path, value)
        except opa_data.OpaDataError as error:
            if error.status is None:
                raise errors.EngineUnavailableError(
                    f"OPA at {self.url} while writing /v1/data/{slash_path}: {error}") from error
            kind: Callable[[str], errors.PolicyEngineError] = (
                errors.PolicyDataError if error.code == _INVALID else errors.EngineUnavailableError)
            raise kind(f"OPA at {self.url} refused data at /v1/data/{slash_path}: {error}") from error


def _policy_id(relative_path: str) -> str:
    return POLICY_ID_PREFIX + relative_path


def _problems(details: Sequence[OpaErrorDetail], summary: str) -> list[errors.CompileProblem]:
    """OPA's ``errors`` list as problems pointing at files of the policy directory."""
    problems = []
    for detail in details:
        location = detail.get("location", {})
        file = str(location.get("file", "")).removeprefix(POLICY_ID_PREFIX)
        row = location.get("row")
        problems.append(errors.CompileProblem(
            file, row if isinstance(row, int) else None,
            f"{detail.get('code', 'error')}: {detail.get('message', '')}"))
    return problems or [errors.CompileProblem("", None, summary or "refused")]
