"""The one interface every grid data provider implements, and the HTTP edge they share.

A provider is chosen per region by the providers file (see
:mod:`carbon_feed.config`); the chain only ever sees an
:class:`IntensitySource`, so adding a provider is adding a module, and a
test can drive the chain with any provider against a local HTTP server.

:class:`JsonClient` turns every way an HTTP call can fail into one of the
:mod:`carbon_feed.errors` classes, including ``429`` with its
``Retry-After``. It never logs request headers or URLs with credentials:
providers pass secrets in headers or basic auth only.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import requests

from carbon_feed import errors, model
from carbongate import clock, timefmt

log = logging.getLogger(__name__)


class IntensitySource(Protocol):
    """Gives the current reading (and forecast) for one of our regions."""

    @property
    def name(self) -> str:
        """Provider name as published in ``source`` (``watttime``, ``ukci`` ...)."""
        ...

    def regions(self) -> frozenset[str]:
        """The regions this source was configured for."""
        ...

    def fetch(self, region: str, *, now: datetime) -> model.Reading:
        """The reading for ``region``; raises :class:`errors.ProviderError` when it cannot."""
        ...


class WithCadence:
    """A source whose readings carry the cadence the providers file states for it."""

    def __init__(self, inner: IntensitySource, *, cadence_s: int) -> None:
        self._inner = inner
        self._cadence_s = cadence_s

    @property
    def name(self) -> str:
        return self._inner.name

    def regions(self) -> frozenset[str]:
        return self._inner.regions()

    def fetch(self, region: str, *, now: datetime) -> model.Reading:
        return dataclasses.replace(self._inner.fetch(region, now=now), cadence_s=self._cadence_s)


class ZonedSource:
    """What the HTTP providers share: a name, and the provider's zone for each of our regions."""

    def __init__(self, *, name: str, zones: Mapping[str, str]) -> None:
        self._name = name
        self._zones = dict(zones)

    @property
    def name(self) -> str:
        return self._name

    def regions(self) -> frozenset[str]:
        return frozenset(self._zones)

    def _zone(self, region: str) -> str:
        """The provider's zone for ``region``; :class:`errors.NoData` for a region not configured."""
        zone = self._zones.get(region)
        if zone is None:
            raise errors.NoData(f"{self._name}: not configured for region {region!r}")
        return zone


class JsonClient:
    """GET JSON over one keep-alive session, errors mapped to feed errors."""

    def __init__(self, *, provider: str, base_url: str, timeout_s: float,
                 session: requests.Session | None = None) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = session or requests.Session()

    def get(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        now: datetime | None = None,
    ) -> Any:
        """The decoded JSON body of ``GET base_url + path``."""
        url = self.base_url + path
        try:
            response = self.session.get(url, params=params, headers=dict(headers or {}),
                                        auth=auth, timeout=self.timeout_s)
        except requests.Timeout as error:
            raise errors.ProviderTimeout(f"{self.provider}: no answer from {url} within "
                                         f"{self.timeout_s:g} s") from error
        except requests.RequestException as error:
            raise errors.ProviderUnreachable(f"{self.provider}: {url}: {type(error).__name__}") from error
        self._raise_for_status(response, url, now=now)
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError) as error:
            raise errors.MalformedResponse(f"{self.provider}: {url} did not return JSON: "
                                           f"{response.text[:120]!r}") from error

    def _raise_for_status(self, response: requests.Response, url: str, *, now: datetime | None) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = _error_detail(response)
        message = f"{self.provider}: {url} answered {status}{': ' + detail if detail else ''}"
        if status == 429:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"), now=now)
            raise errors.RateLimited(message, retry_after_s=retry_after)
        if status in (401, 403):
            raise errors.AuthError(message, status=status)
        raise errors.HttpError(message, status=status)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: either delay-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or clock.utc_now())).total_seconds())


def _error_detail(response: requests.Response) -> str:
    """A provider's own error message, short, for the log line."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:120].strip()
    if isinstance(body, Mapping):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str):
                return value[:200]
            if isinstance(value, Mapping) and isinstance(value.get("message"), str):
                return str(value["message"])[:200]
    return ""


# --- parsing helpers shared by the providers ----------------------------------------------


def instant(value: Any, *, provider: str, what: str) -> datetime:
    """An ISO 8601 time from a provider body as an aware UTC datetime."""
    if not isinstance(value, str):
        raise errors.MalformedResponse(f"{provider}: {what} is {value!r}, not a time")
    try:
        return timefmt.read_time(value, what)
    except ValueError as error:
        raise errors.MalformedResponse(f"{provider}: {error}") from error


def number(value: Any, *, provider: str, what: str) -> float:
    """A JSON number (not a bool, not a string) as float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.MalformedResponse(f"{provider}: {what} is {value!r}, not a number")
    return float(value)


def field(body: Any, key: str, *, provider: str) -> Any:
    """``body[key]`` of a JSON object, or a clear :class:`errors.MalformedResponse`."""
    if not isinstance(body, Mapping):
        raise errors.MalformedResponse(f"{provider}: expected a JSON object, got {type(body).__name__}")
    if key not in body:
        raise errors.MalformedResponse(f"{provider}: response has no {key!r}")
    return body[key]
