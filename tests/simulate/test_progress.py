"""A long replay says how far it is on stderr; a short one stays silent (``simulate.progress``)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from simulate import progress

AT = datetime(2023, 3, 1, tzinfo=UTC)


class Ticks:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_nothing_is_printed_in_the_first_seconds_then_a_line_every_so_often() -> None:
    out, clock = io.StringIO(), Ticks()
    report = progress.Reporter(out=out, clock=clock, quiet_s=10, every_s=10)
    for second, done in ((0, 1), (5, 50), (9.9, 90)):
        clock.now = second
        report(done, 1000, AT)
    assert out.getvalue() == ""
    clock.now = 10.0
    report(100, 1000, AT)
    clock.now = 15.0
    report(150, 1000, AT)  # not yet due again
    clock.now = 20.5
    report(400, 1000, AT)
    lines = out.getvalue().splitlines()
    assert lines == [
        "carbongate replay: 100 of 1000 jobs submitted (10%), simulated 2023-03-01T00:00:00Z, 10s so far",
        "carbongate replay: 400 of 1000 jobs submitted (40%), simulated 2023-03-01T00:00:00Z, 20s so far",
    ]
