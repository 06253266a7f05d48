"""Daily weather files in the format AquaCrop ships: reading and checking them.

A file is whitespace-separated columns, one row a day, after one or more
header lines::

    Day  Month  Year  Tmin(C)  Tmax(C)  Prcp(mm)  Et0(mm)
    1    1      1982  -21.11   3.33     0.00      1.59

(AquaCrop-OSPy's ``champion_climate.txt`` and its other ``*_climate.txt``
files; a spreadsheet saved as tab- or space-separated text is one too). Days
must be consecutive. A region of a scenario names such a file
(``weather_file``) to take its real weather instead of a generated one; the
world model (``firmware_sim.world.weather_file``) fills in what the file
lacks. Errors name the file, the line and the column.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("Day", "Month", "Year", "Tmin(C)", "Tmax(C)", "Prcp(mm)", "Et0(mm)")
FORMAT_HINT = (
    "expected AquaCrop's daily weather format: header line(s), then whitespace-separated "
    "columns " + " ".join(COLUMNS) + ", one row per consecutive day"
)
_TEMPERATURE_RANGE_C = (-70.0, 60.0)  # beyond Earth's records: a unit or column mix-up
_MAX_DAILY_MM = 2000.0  # rain or ET0 above this in a day is a typo


class WeatherFileError(ValueError):
    """A weather file that cannot be used; the message names the file, line and column."""


@dataclass(frozen=True, slots=True, eq=False)
class WeatherTable:
    """A weather file's days (``eq=False``: compared and hashed by identity, so a
    climate holding one stays a cheap cache key; :func:`read_weather_table` returns
    the same object for an unchanged file)."""

    path: Path
    first_ordinal: int  # date.toordinal() of the first row's day
    tmin_c: NDArray[np.float64]
    tmax_c: NDArray[np.float64]
    rain_mm: NDArray[np.float64]
    et0_mm: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.tmin_c)

    @property
    def first_day(self) -> date:
        return date.fromordinal(self.first_ordinal)

    @property
    def last_day(self) -> date:
        return date.fromordinal(self.first_ordinal + len(self) - 1)

    def covers(self, first: date, last: date) -> bool:
        """Whether every day from ``first`` to ``last`` (inclusive) is in the file."""
        return self.first_day <= first and last <= self.last_day

    def span(self) -> str:
        """The covered days, for messages: "1982-01-01 to 2018-12-31"."""
        return f"{self.first_day.isoformat()} to {self.last_day.isoformat()}"


def read_weather_table(path: str | os.PathLike[str]) -> WeatherTable:
    """Read and check a daily weather file (memoised while the file is unchanged)."""
    resolved = Path(path).expanduser().resolve()
    try:
        stat = resolved.stat()
    except OSError as exc:
        raise WeatherFileError(
            f"weather file {str(path)!r}: cannot read it ({exc.strerror})"
        ) from None
    if not resolved.is_file():
        raise WeatherFileError(f"weather file {str(path)!r}: not a file")
    return _read(resolved, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _read(path: Path, _mtime_ns: int, _size: int) -> WeatherTable:
    # pandas only when a file is read: every scenario load imports this module.
    import pandas as pd

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise WeatherFileError(f"{path}: not UTF-8 text ({exc.reason}); {FORMAT_HINT}") from None
    header = _header_lines(lines)
    if header == 0:
        raise WeatherFileError(f"{path}: line 1: no header line; {FORMAT_HINT}")
    if header >= len(lines):
        raise WeatherFileError(f"{path}: no data rows after the header; {FORMAT_HINT}")
    # A file written by pandas with its index (AquaCrop's brussels_future.txt) has one
    # more field per row than its header names: pandas, and so AquaCrop, take the first
    # as the row index, and so do we.
    indexed = len(lines[header - 1].split()) == len(COLUMNS) == len(lines[header].split()) - 1
    names = ["(index)", *COLUMNS] if indexed else list(COLUMNS)
    _check_field_counts(path, lines, header, names)
    try:
        frame = pd.read_csv(
            path, sep=r"\s+", skiprows=header, header=None, names=names, dtype=str,
        )  # fmt: skip
    except (pd.errors.ParserError, ValueError) as exc:
        raise WeatherFileError(f"{path}: {exc}; {FORMAT_HINT}") from None
    values = {name: _numeric(path, frame, name, header) for name in COLUMNS}
    ordinals = _ordinals(path, values, header)
    tmin, tmax = values["Tmin(C)"], values["Tmax(C)"]
    _check(path, header, "Tmin(C)", tmin, *_TEMPERATURE_RANGE_C)
    _check(path, header, "Tmax(C)", tmax, *_TEMPERATURE_RANGE_C)
    _check(path, header, "Prcp(mm)", values["Prcp(mm)"], 0.0, _MAX_DAILY_MM)
    _check(path, header, "Et0(mm)", values["Et0(mm)"], 0.0, _MAX_DAILY_MM)
    inverted = np.flatnonzero(tmax < tmin)
    if inverted.size:
        i = int(inverted[0])
        raise WeatherFileError(
            f"{path}: line {header + i + 1}, column Tmax(C): {tmax[i]:g} is below Tmin(C) "
            f"{tmin[i]:g} (are the two columns swapped?)"
        )
    return WeatherTable(
        path=path,
        first_ordinal=int(ordinals[0]),
        tmin_c=tmin,
        tmax_c=tmax,
        rain_mm=values["Prcp(mm)"],
        et0_mm=values["Et0(mm)"],
    )


def _header_lines(lines: list[str]) -> int:
    """Leading lines that are not data (a data row starts with a number: the day)."""
    for index, line in enumerate(lines):
        first = line.split(maxsplit=1)[0] if line.strip() else ""
        if first.isdigit():
            return index
    return len(lines)


def _check_field_counts(path: Path, lines: list[str], header: int, names: list[str]) -> None:
    for number, line in enumerate(lines[header:], start=header + 1):
        fields = len(line.split())
        if fields != len(names) and not (fields == 0 and number == len(lines)):
            what = "an empty line" if fields == 0 else f"{fields} columns"
            raise WeatherFileError(
                f"{path}: line {number}: {what}, expected {len(names)} ({' '.join(names)})"
            )


def _numeric(path: Path, frame: pd.DataFrame, column: str, header: int) -> NDArray[np.float64]:
    import pandas as pd

    raw = frame[column]
    numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        i = int(bad[0])
        raise WeatherFileError(
            f"{path}: line {header + i + 1}, column {column}: {raw.iloc[i]!r} is not a number"
        )
    return numbers


def _ordinals(path: Path, values: dict[str, NDArray[np.float64]], header: int) -> NDArray[np.int64]:
    import pandas as pd

    parts = {"year": values["Year"], "month": values["Month"], "day": values["Day"]}
    whole = np.all([np.equal(np.mod(v, 1), 0) for v in parts.values()], axis=0)
    days = pd.to_datetime(
        pd.DataFrame({k: np.where(whole, v, -1) for k, v in parts.items()}), errors="coerce"
    )
    bad = np.flatnonzero(days.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise WeatherFileError(
            f"{path}: line {header + i + 1}, columns Day Month Year: {parts['day'][i]:g} "
            f"{parts['month'][i]:g} {parts['year'][i]:g} is not a date"
        )
    # Days since 0001-01-01 + 1: date.toordinal().
    ordinals = (days.to_numpy().astype("datetime64[D]").astype(np.int64)
                + date(1970, 1, 1).toordinal())  # fmt: skip
    jumps = np.flatnonzero(np.diff(ordinals) != 1)
    if jumps.size:
        i = int(jumps[0]) + 1
        before, this = date.fromordinal(int(ordinals[i - 1])), date.fromordinal(int(ordinals[i]))
        raise WeatherFileError(
            f"{path}: line {header + i + 1}, columns Day Month Year: {this.isoformat()} "
            f"follows {before.isoformat()}; days must be consecutive (expected "
            f"{date.fromordinal(before.toordinal() + 1).isoformat()})"
        )
    return ordinals


def _check(
    path: Path, header: int, column: str, values: NDArray[np.float64], low: float, high: float
) -> None:
    outside = np.flatnonzero((values < low) | (values > high))
    if outside.size:
        i = int(outside[0])
        raise WeatherFileError(
            f"{path}: line {header + i + 1}, column {column}: {values[i]:g} is outside "
            f"[{low:g}, {high:g}]"
        )
