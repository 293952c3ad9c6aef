"""Budget periods: calendar months (the default) or ISO weeks, in UTC.

A period is named the way people write it (``2026-11``, ``2026-W47``) and
covers ``[start, end)``; a run belongs to the period in which it ended, the
moment its emissions became known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

PeriodKind = Literal["monthly", "weekly"]
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class PeriodError(ValueError):
    """A period name that is neither ``YYYY-MM`` nor ``YYYY-Www``."""


@dataclass(frozen=True)
class Period:
    """A named span of time ``[start, end)`` budgets are counted over."""

    kind: PeriodKind
    key: str
    start: datetime
    end: datetime

    def contains(self, when: datetime) -> bool:
        """Whether an instant falls inside the period."""
        return self.start <= when < self.end


def containing(when: datetime, kind: PeriodKind = "monthly") -> Period:
    """The period of ``kind`` an instant falls in."""
    when = when.astimezone(UTC)
    if kind == "weekly":
        year, week, _ = when.isocalendar()
        return parse(f"{year}-W{week:02d}")
    return parse(f"{when.year}-{when.month:02d}")


def parse(text: str) -> Period:
    """``2026-11`` (a month) or ``2026-W47`` (an ISO week)."""
    text = text.strip()
    if match := _MONTH.match(text):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise PeriodError(f"{text!r}: month must be 01 to 12")
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return Period(kind="monthly", key=text, start=start, end=end)
    if match := _WEEK.match(text):
        try:
            monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
        except ValueError as error:
            raise PeriodError(f"{text!r}: {error}") from error
        start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
        return Period(kind="weekly", key=text, start=start, end=start + timedelta(days=7))
    raise PeriodError(f"{text!r} is not a period (expected YYYY-MM, e.g. 2026-11, or YYYY-Www)")


def weeks(period: Period) -> list[tuple[datetime, datetime]]:
    """The ISO weeks (Monday to Monday) overlapping a period, clipped to it."""
    monday = period.start - timedelta(days=period.start.weekday())
    monday = monday.replace(hour=0, minute=0, second=0, microsecond=0)
    spans = []
    while monday < period.end:
        spans.append((max(monday, period.start), min(monday + timedelta(days=7), period.end)))
        monday += timedelta(days=7)
    return spans
