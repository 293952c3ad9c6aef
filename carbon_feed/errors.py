"""What can go wrong fetching grid data, sorted by what the feed should do about it.

The chain (:mod:`carbon_feed.chain`) reacts to the class, not the message:
a transient error backs the provider off with jitter, a rate limit waits for
the provider's ``Retry-After``, a rejected reading (unknown unit, clock skew,
implausible value) is counted and never published. Every class carries a
``kind`` that becomes the ``kind`` label of the error metric, so a dashboard
can tell a provider outage from a provider that changed its units.
"""

from __future__ import annotations


class FeedError(Exception):
    """Base of every feed error."""

    kind = "error"


class ConfigError(FeedError):
    """The providers file or a credential cannot be used; the message names which."""

    kind = "config"


class ProviderError(FeedError):
    """A provider could not give a reading this time; try the next one in the chain."""

    kind = "provider"


class ProviderTimeout(ProviderError):
    """The provider did not answer within ``feed.request_timeout_s``."""

    kind = "timeout"


class ProviderUnreachable(ProviderError):
    """No HTTP answer at all: refused connection, DNS, TLS, reset."""

    kind = "unreachable"


class HttpError(ProviderError):
    """The provider answered with an HTTP error status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
        self.kind = f"http_{status}" if status < 500 else "http_5xx"


class AuthError(HttpError):
    """Credentials refused (401/403): retrying soon will not help."""


class RateLimited(HttpError):
    """429: the provider named how long to wait (``retry_after_s``, None if it did not)."""

    def __init__(self, message: str, *, retry_after_s: float | None) -> None:
        super().__init__(message, status=429)
        self.retry_after_s = retry_after_s
        self.kind = "rate_limited"


class MalformedResponse(ProviderError):
    """The body was not the JSON (or CSV) shape the provider documents."""

    kind = "malformed"


class NoData(ProviderError):
    """The provider answered but had no value for the region (for example an empty list)."""

    kind = "no_data"


class RejectedReading(ProviderError):
    """A reading that parsed but must not reach a decision."""

    kind = "rejected"


class UnitError(RejectedReading):
    """A value in a unit the feed does not convert, or implausible for g/kWh."""

    kind = "unit"


class ClockSkewError(RejectedReading):
    """The reading claims to be observed further in the future than the skew allowed."""

    kind = "clock_skew"
