"""Writing a document into an OPA server's data tree: ``PUT /v1/data/<path>``.

The feed puts the grid, governance the budgets and the OPA server engine its
platform config and everything the webhook hands it, all through this one
client, so they agree on what success is (OPA's Data API answers ``204 No
Content``; ``200`` when asked for metrics or provenance: both are success)
and on how a refusal reads (OPA's ``code`` and ``message``).
"""

from __future__ import annotations

import json
from typing import Any

import requests

SUCCESS = frozenset({200, 204})


class OpaDataError(RuntimeError):
    """OPA did not take the document.

    ``status`` is None when OPA could not be reached at all; ``code`` is OPA's
    error code (``invalid_parameter`` for a document it refuses) when it said one.
    """

    def __init__(self, message: str, *, status: int | None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class OpaDataClient:
    """``PUT`` documents under ``/v1/data`` of one OPA server."""

    def __init__(self, *, url: str, token: str | None = None, timeout_s: float = 5.0,
                 session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout_s = timeout_s
        self._session = session or requests.Session()

    def address(self, path: str) -> str:
        """The URL a document at ``path`` (slashes, no leading one) is written to."""
        return f"{self.url}/v1/data/{path.strip('/')}"

    def put(self, path: str, document: Any) -> None:
        """Replace (or create) the document at ``path``; :class:`OpaDataError` when OPA does not take it."""
        target = self.address(path)
        try:
            body = json.dumps(document, allow_nan=False)
        except ValueError as error:
            raise OpaDataError(f"cannot send {target} a document that is not JSON: {error}",
                               status=None, code="invalid_parameter") from error
        try:
            response = self._session.put(target, data=body, headers=self._headers, timeout=self._timeout_s)
        except requests.RequestException as error:
            raise OpaDataError(f"OPA at {target} unreachable: {type(error).__name__}: {error}",
                               status=None) from error
        if response.status_code in SUCCESS:
            return
        code, message = _refusal(response)
        raise OpaDataError(f"OPA at {target} answered {response.status_code}: {code}: {message}",
                           status=response.status_code, code=code)

    def close(self) -> None:
        self._session.close()


def _refusal(response: requests.Response) -> tuple[str, str]:
    """OPA's error ``code`` and ``message``, or the start of whatever else it answered."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(body, dict):
        return "", response.text[:200]
    return str(body.get("code", "")), str(body.get("message", ""))[:200]
