"""Times and durations as every component reads and writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from carbongate import timefmt


@pytest.mark.parametrize(("text", "seconds"), [
    ("90m", 5400), ("6h", 21600), ("1h30m", 5400), ("2d", 172800), ("45s", 45), ("1.5h", 5400), (" 2h ", 7200),
])
def test_durations_read_like_kubernetes_users_write_them(text: str, seconds: int) -> None:
    assert timefmt.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "12x", "h", "-1h", "1h-30m", "400d", "1e3h", "soon"])
def test_unreadable_durations_raise_a_duration_error(text: str) -> None:
    with pytest.raises(timefmt.DurationError):
        timefmt.parse_duration(text)


def test_instants_round_trip_in_utc_with_a_z() -> None:
    assert timefmt.parse_time("2026-11-22T14:00:00+01:00") == datetime(2026, 11, 22, 13, tzinfo=UTC)
    assert timefmt.format_time(datetime(2026, 11, 22, 14, tzinfo=timezone(timedelta(hours=1)))) == \
        "2026-11-22T13:00:00Z"
    assert timefmt.parse_time("2026-11-22T13:00:00Z") == datetime(2026, 11, 22, 13, tzinfo=UTC)


def test_an_instant_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        timefmt.parse_time("2026-11-22T13:00:00")


def test_a_bare_time_is_utc_only_where_asked_for_trace_files() -> None:
    assert timefmt.parse_time("2023-01-01 05:00:00", naive_utc=True) == datetime(2023, 1, 1, 5, tzinfo=UTC)
    assert timefmt.parse_time("2023-01-01T06:00:00+01:00", naive_utc=True) == datetime(2023, 1, 1, 5, tzinfo=UTC)
    with pytest.raises(timefmt.NoTimeZone):
        timefmt.parse_time("2023-01-01 05:00:00")


@pytest.mark.parametrize(("text", "message"), [
    ("2026-11-22T13:00:00", "--now '2026-11-22T13:00:00' has no time zone"),
    ("tomorrow", "--now 'tomorrow' is not RFC 3339"),
])
def test_read_time_names_what_was_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        timefmt.read_time(text, "--now")
    assert timefmt.read_time("2026-11-22T13:00:00Z", "--now") == datetime(2026, 11, 22, 13, tzinfo=UTC)


AT = datetime(2026, 11, 22, 17, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("now", AT), ("now-2h", AT - timedelta(hours=2)), ("now+1h30m", AT + timedelta(minutes=90)),
    ("2026-11-22T13:00:00Z", datetime(2026, 11, 22, 13, tzinfo=UTC)),
    ("2026-11-22T14:00:00+01:00", datetime(2026, 11, 22, 13, tzinfo=UTC)),
])
def test_instants_on_the_command_line_are_rfc3339_or_relative_to_now(text: str, expected: datetime) -> None:
    assert timefmt.parse_instant(text, now=AT) == expected


@pytest.mark.parametrize(("text", "says"), [
    ("yesterday", "now-2h"), ("2026-11-22", "is a date, not an instant"),
    ("2026-11-22T13:00:00", "no time zone"), ("now-2x", "not a duration"),
])
def test_unreadable_instants_say_what_is_accepted(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        timefmt.parse_instant(text, now=AT)
