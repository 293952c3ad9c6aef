"""Grid trace files (CSV), read one way: the file, its layouts, its cells.

The feed replays traces, ``carbongate review`` and the simulator decide on
them, governance prices runs on them; each reads the rows here, so a time
without a zone, a blank hour or an implausible value means the same to all.
Three layouts:

* **zone rows**: a time, a zone and an intensity per row: the Electricity Maps
  data-portal export (``Datetime (UTC)``, ``Zone Id``, ``Carbon Intensity
  gCO₂eq/kWh (LCA)`` and ``(direct)``) and the plain ``time,region,g_per_kwh``;
* **wide**: a time column and one intensity column per region (WattTime's
  vessim export ``time,Caiso_North``, "Let's wait awhile" ``Time,Carbon
  Intensity``, the 123-zone wide file, EIA-930 ``timestamp,...,avg_CI``);
* **recorded forecasts**: ``request_time,forecast_time,<region>...``.

Times follow :func:`carbongate.timefmt.parse_time` with ``naive_utc``: every
trace layout writes UTC without saying so. A blank intensity is an hour the
source had no estimate for: skipped, never zero. An intensity that is not a
finite number from 0 to :data:`MAX_PLAUSIBLE_G_PER_KWH` is an error naming the
file and line.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

from carbongate import timefmt

# Above any grid on Earth (lignite is ~1,200 g/kWh): a larger figure is another unit.
MAX_PLAUSIBLE_G_PER_KWH: Final = 2000.0
Column = Literal["lca", "direct"]
PORTAL_TIME, PORTAL_ZONE = "datetime (utc)", "zone id"
PORTAL_COLUMNS: Final[Mapping[Column, str]] = {
    "lca": "carbon intensity gco2eq/kwh (lca)",
    "direct": "carbon intensity gco2eq/kwh (direct)",
}
PLAIN: Final = ("time", "region", "g_per_kwh")
TIME_COLUMNS: Final = ("time", "timestamp", "datetime", "datetime_utc_assumed", "datetime (utc)", "date")
RECORDED: Final = ("request_time", "forecast_time")

SKIPPED_COLUMNS: Final = ("hour_index",)
# Columns holding one region's value under a generic name: the region is the file's.
GENERIC_VALUES: Final = ("carbon intensity", "avg_ci", "value", "g_per_kwh")
# EIA-930 files carry the generation mix beside the intensity: only avg_CI is one.
MIX_COLUMNS: Final = frozenset({"WND", "SUN", "WAT", "OIL", "NG", "COL", "NUC", "OTH"})

Row = tuple[datetime, float]


class TraceFileError(ValueError):
    """A trace file that cannot be read as asked; the message names the file (and line)."""


@dataclass(frozen=True)
class Table:
    """A trace file's header (as written) and its data rows, numbered from line 2."""

    path: Path
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @property
    def names(self) -> list[str]:
        """The header normalised: trimmed, lower case, ``₂`` as ``2``."""
        return [normalise(name) for name in self.header]


def normalise(name: str) -> str:
    return name.strip().lower().replace("₂", "2")


def read(path: Path) -> Table:
    """The file's header and rows (UTF-8, a BOM allowed); :class:`TraceFileError` when unreadable."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            lines = list(csv.reader(handle))
    except OSError as error:
        raise TraceFileError(f"cannot read trace {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise TraceFileError(f"{path}: not UTF-8 text: {error.reason}") from error
    except csv.Error as error:
        raise TraceFileError(f"{path}: not CSV: {error}") from error
    if not lines:
        raise TraceFileError(f"{path}: empty file")
    return Table(path=path, header=tuple(lines[0]), rows=tuple(tuple(row) for row in lines[1:]))


def time_cell(text: str, path: Path, line: int) -> datetime:
    """A trace time (a bare one is UTC) as an aware UTC datetime."""
    try:
        return timefmt.parse_time(text, naive_utc=True)
    except ValueError as error:
        raise TraceFileError(f"{path}:{line}: {error} ({text.strip()!r} is not a time)") from error


def intensity_cell(text: str, path: Path, line: int) -> float | None:
    """gCO2eq/kWh, or None for a blank cell (no estimate that hour)."""
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError as error:
        raise TraceFileError(f"{path}:{line}: {error}") from error
    if not math.isfinite(value) or value < 0:
        raise TraceFileError(f"{path}:{line}: intensity {text!r} is not a finite number >= 0")
    if value > MAX_PLAUSIBLE_G_PER_KWH:
        raise TraceFileError(f"{path}:{line}: {value!r} is not a plausible gCO2eq/kWh value "
                             f"(0-{MAX_PLAUSIBLE_G_PER_KWH:g}); is it another unit?")
    return value


def is_portal(table: Table) -> bool:
    return PORTAL_TIME in table.names


def has_zone_rows(table: Table) -> bool:
    """The data-portal layout or ``time,region,g_per_kwh``."""
    return is_portal(table) or all(name in table.names for name in PLAIN)


def zone_rows(table: Table, column: Column = "lca") -> dict[str, list[Row]]:
    """zone -> its (time, intensity) rows, in file order, blank hours left out."""
    names = table.names
    if is_portal(table):
        wanted = (PORTAL_TIME, PORTAL_ZONE, PORTAL_COLUMNS[column])
    elif has_zone_rows(table):
        wanted = PLAIN
    else:
        raise TraceFileError(f"{table.path}: header {list(table.header)[:5]} is neither the Electricity Maps "
                             f"data-portal layout nor 'time,region,g_per_kwh'")
    missing = [w for w in wanted if w not in names]
    if missing:
        raise TraceFileError(f"{table.path}: no column {missing[0]!r}")
    at, zone, value = (names.index(w) for w in wanted)
    found: dict[str, list[Row]] = {}
    for line, row in enumerate(table.rows, start=2):
        if len(row) <= max(at, zone, value):
            continue
        number = intensity_cell(row[value], table.path, line)
        if number is not None:
            found.setdefault(row[zone].strip(), []).append((time_cell(row[at], table.path, line), number))
    return found


def column_rows(table: Table, time: int, column: int) -> list[Row]:
    """One column of a wide file as (time, intensity) rows, blank hours left out."""
    found: list[Row] = []
    for line, row in enumerate(table.rows, start=2):
        if len(row) <= max(time, column):
            continue
        number = intensity_cell(row[column], table.path, line)
        if number is not None:
            found.append((time_cell(row[time], table.path, line), number))
    return found


def time_column(table: Table, candidates: Sequence[str] = TIME_COLUMNS) -> int:
    """The index of a wide file's time column."""
    for index, name in enumerate(table.names):
        if name in candidates:
            return index
    raise TraceFileError(f"{table.path}: no time column (one of {', '.join(candidates)}) "
                         f"in {list(table.header)[:6]}")


def wide_columns(table: Table) -> dict[str, tuple[int, int]]:
    """region -> (time column, value column) of a wide file.

    A value column's header names its region (``Caiso_North`` -> ``CAISO_NORTH``);
    a generic one (``Carbon Intensity``, ``avg_CI``) holds the file's region, the
    name before the first ``_`` (``CISO_NG_avgCI_2022.csv`` -> ``CISO``).
    """
    time = time_column(table)
    header = [h.strip() for h in table.header]
    times = [i for i, name in enumerate(table.names) if name in TIME_COLUMNS]
    values = [i for i, h in enumerate(header) if i not in times and h not in SKIPPED_COLUMNS and h not in MIX_COLUMNS]
    if not values:
        raise TraceFileError(f"{table.path}: no intensity column beside the time")
    file_region = table.path.stem.split("_")[0].upper()
    return {(file_region if header[i].lower() in GENERIC_VALUES else header[i].upper()): (time, i) for i in values}


def recorded_rows(table: Table) -> dict[str, list[tuple[datetime, datetime, float]]]:
    """``request_time,forecast_time,<region>...`` -> region -> (issued, target, intensity) rows."""
    if tuple(table.names[:2]) != RECORDED or len(table.header) < 3:
        raise TraceFileError(f"{table.path}: expected the header request_time,forecast_time,<region>...")
    regions = [name.strip().upper() for name in table.header[2:]]
    found: dict[str, list[tuple[datetime, datetime, float]]] = {region: [] for region in regions}
    for line, row in enumerate(table.rows, start=2):
        if len(row) < 2 + len(regions):
            continue
        issued, target = time_cell(row[0], table.path, line), time_cell(row[1], table.path, line)
        for region, cell in zip(regions, row[2:2 + len(regions)], strict=True):
            number = intensity_cell(cell, table.path, line)
            if number is not None:
                found[region].append((issued, target, number))
    return found


def same_time_in(moment: datetime, year: int) -> datetime:
    """The same time of year in ``year``: how a past trace is replayed onto another year.

    29 February becomes the 28th in a year without one. The feed replays traces
    and governance prices runs on them this one way.
    """
    try:
        return moment.replace(year=year)
    except ValueError:
        return moment.replace(year=year, day=28)
