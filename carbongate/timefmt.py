"""Times and durations as the contracts write them, in one place.

RFC 3339 UTC instants with a ``Z`` to the second (``2026-11-22T13:00:00Z``)
and Go-style durations (``90m``, ``6h``, ``1h30m``) are read and written by
the webhook, the feed, the controller, governance and the simulator alike;
a second parser anywhere would sooner or later disagree with this one.

A time without a zone: what a person or a provider writes (a flag, an
annotation, an API body, a workload file) must say its zone (``Z`` or an
offset) and is refused otherwise (:class:`NoTimeZone`), since guessing would
shift it silently by hours. Trace files are the one exception, asked for with
``naive_utc=True``: every trace layout carbongate reads (the Electricity Maps
portal's ``Datetime (UTC)``, the UK API's exports, WattTime's and the
simulator's CSVs) writes UTC without saying so, so there a bare time is UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(
    r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$"
)
_UNIT_SECONDS = (86400, 3600, 60, 1)
MAX_DURATION_S = 366 * 86400


class DurationError(ValueError):
    """A duration carbongate cannot read; the message shows the accepted forms."""


def parse_duration(text: str) -> int:
    """``90m``, ``6h``, ``1h30m``, ``2d``, ``45s``, ``1.5h`` -> whole seconds (no sign, at most a year)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise DurationError(f"{text!r} is not a duration like 90m, 6h or 1h30m")
    seconds = sum(float(g) * unit for g, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if g)
    if seconds > MAX_DURATION_S:
        raise DurationError(f"{text!r} is longer than a year")
    return int(seconds)


class NoTimeZone(ValueError):
    """A time that does not say its zone where carbongate will not guess it."""


def parse_time(text: str, *, naive_utc: bool = False) -> datetime:
    """An RFC 3339 / ISO 8601 instant as an aware UTC datetime; ValueError otherwise.

    A time without a zone raises :class:`NoTimeZone` unless ``naive_utc`` (trace
    files only, see the module's docstring), where it is read as UTC.
    """
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        if not naive_utc:
            raise NoTimeZone(f"{text!r} has no time zone")
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def read_time(text: str, what: str) -> datetime:
    """:func:`parse_time` of a time a person or a provider wrote, refused with a message naming ``what``."""
    try:
        return parse_time(text)
    except NoTimeZone as error:
        raise NoTimeZone(f"{what} {text!r} has no time zone (end it with Z or an offset)") from error
    except ValueError as error:
        raise ValueError(f"{what} {text!r} is not RFC 3339: {error}") from error


def format_time(value: datetime) -> str:
    """An aware datetime as RFC 3339 UTC to the second with a ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_RELATIVE = re.compile(r"^now(?:\s*([+-])\s*(\S+))?$")


def parse_instant(text: str, *, now: datetime) -> datetime:
    """What a person types for an instant on the command line, as an aware UTC datetime.

    An RFC 3339 instant (``2026-11-22T13:00:00Z``, an offset instead of ``Z``)
    or one relative to ``now``: ``now``, ``now-2h``, ``now+1h30m``. Raises
    ValueError with a message that shows the accepted forms, for a bare date
    (which day's midnight, in which zone?) as for ``yesterday``.
    """
    stripped = text.strip()
    relative = _RELATIVE.match(stripped)
    if relative:
        sign, amount = relative.groups()
        if sign is None:
            return now.astimezone(UTC)
        try:
            seconds = parse_duration(amount)
        except DurationError as error:
            raise ValueError(f"{text!r}: {error}") from None
        return (now + (timedelta(seconds=seconds) if sign == "+" else -timedelta(seconds=seconds))).astimezone(UTC)
    forms = "an RFC 3339 instant like 2026-11-22T13:00:00Z, or now, now-2h, now+30m"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", stripped):
        raise ValueError(f"{text!r} is a date, not an instant: give the time and zone too, "
                         f"e.g. {stripped}T00:00:00Z")
    try:
        return parse_time(stripped)
    except NoTimeZone:
        raise ValueError(f"{text!r} has no time zone: add Z (UTC) or an offset like +01:00") from None
    except ValueError:
        raise ValueError(f"{text!r} is not {forms}") from None
