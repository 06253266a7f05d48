"""Import tables: read from CSV text or from records, and read cell by cell into values.

A table is its column names and its rows, each row with the line it came
from (the CSV line, header = line 1; for records, the record's 1-based
position). Problems with the table as a whole (unreadable, no header, a
required column missing) raise :class:`ImportFormatError`; problems with a
row or a cell become :class:`~forecasting.imports._report.BadRow` entries
naming the line, the column and the fix, so that one pass reports them all.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from agrimatch.contract.topics import ID_RE
from forecasting.imports._report import BadRow

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOT_ID_CHARACTERS = re.compile(r"[^a-z0-9_-]+")
# Words a spreadsheet writes for "no" in a yes/no column.
_FALSE_WORDS = frozenset({"", "0", "false", "no", "n"})


class ImportFormatError(ValueError):
    """The input cannot be read as the table of its kind: not a file, not UTF-8 CSV, no
    header, or a required column missing. The message says which and how to fix it;
    nothing was checked row by row and nothing was written."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an import kind: its name, whether every file needs it, what it holds."""

    name: str
    required: bool
    meaning: str  # what to write there, with unit and format
    example: str


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row as text: ``cells`` maps column name to the stripped cell ('' when empty).

    ``problem`` is set when the row itself is malformed (more cells than the
    header has); such a row is reported as it is and not read further.
    """

    line: int
    cells: Mapping[str, str]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class RawTable:
    """An import's columns (lower case, in file order) and its non-blank rows."""

    columns: tuple[str, ...]
    rows: tuple[RawRow, ...]
    source: str  # the file name, or "records", for messages


def read_csv(path: Path) -> RawTable:
    """The table in the CSV file ``path`` (UTF-8, a BOM allowed, comma-separated).

    Raises :class:`ImportFormatError` when the file cannot be read or is not CSV text.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data.startswith(b"PK\x03\x04"):
        raise ImportFormatError(
            f"{path.name} is a spreadsheet workbook (.xlsx), not CSV: save it as 'CSV UTF-8'"
        )
    try:
        # utf-8-sig: spreadsheets put a byte-order mark before the header.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(
            f"{path.name} is not UTF-8 text (byte {exc.start}): save it as 'CSV UTF-8' "
            "(spreadsheets in Chinese locales often save GBK)"
        ) from None
    return parse_csv(text, source=path.name)


def parse_csv(text: str, *, source: str = "CSV") -> RawTable:
    """The table in CSV ``text``: the first non-blank line is the header.

    Column names are stripped and lower-cased; blank lines and rows of empty
    cells are skipped; a row shorter than the header has empty cells at its
    end. Raises :class:`ImportFormatError` for text that is not CSV or has no header.
    """
    if "\x00" in text:
        raise ImportFormatError(f"{source} holds NUL bytes: it is not a CSV text file")
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line = 0
    rows: list[RawRow] = []
    last_line = 0
    try:
        for record in reader:
            line = last_line + 1  # where the record starts (a quoted cell may span lines)
            last_line = reader.line_num
            cells = [cell.strip() for cell in record]
            if not any(cells):
                continue
            if header is None:
                header, header_line = [cell.lower() for cell in cells], line
                continue
            rows.append(_raw_row(line, header, cells))
    except csv.Error as exc:
        raise ImportFormatError(
            f"{source} line {reader.line_num} is not valid CSV ({exc}): "
            "quote cells that hold commas or quotes"
        ) from None
    if header is None:
        raise ImportFormatError(f"{source} is empty: the first line must name the columns")
    _check_header(header, header_line, source)
    return RawTable(tuple(name for name in header if name), tuple(rows), source)


def table_from_records(records: Iterable[Mapping[str, object]]) -> RawTable:
    """A table of records (e.g. JSON objects of an API request); line = position from 1.

    Keys are column names (stripped, lower-cased); None is an empty cell, a
    date is written ISO, True is ``1`` and False empty, anything else ``str()``.
    """
    columns: dict[str, None] = {}
    rows = []
    for position, record in enumerate(records, start=1):
        cells = {str(key).strip().lower(): _cell_text(value) for key, value in record.items()}
        columns.update(dict.fromkeys(cells))
        rows.append(RawRow(position, cells))
    return RawTable(tuple(columns), tuple(rows), "records")


def check_columns(
    table: RawTable,
    kind: str,
    columns: Sequence[Column],
    *,
    one_of: Sequence[tuple[str, ...]] = (),
) -> tuple[str, ...]:
    """Check ``table`` has every required column (and one of each ``one_of`` group);
    returns the columns it has that ``kind`` does not know, which are ignored.

    Raises :class:`ImportFormatError` naming the missing columns and the expected ones.
    """
    have = set(table.columns)
    missing = [c.name for c in columns if c.required and c.name not in have]
    missing += [" or ".join(group) for group in one_of if not have & set(group)]
    if missing:
        expected = ", ".join(
            f"{c.name} ({'required' if c.required else 'optional'})" for c in columns
        )
        alternatives = "".join(f"; one of {' or '.join(g)} is required" for g in one_of)
        raise ImportFormatError(
            f"{table.source} lacks the column(s) {', '.join(missing)}; "
            f"a {kind} CSV has the columns {expected}{alternatives}, "
            f"named on its first line, e.g. {','.join(c.name for c in columns if c.required)}"
        )
    known = {c.name for c in columns}
    return tuple(name for name in table.columns if name not in known)


def identifier_hint(value: str) -> str:
    """How to write ``value`` as an id, with a suggestion when one can be made."""
    rule = "lower-case letters, digits, '-' and '_', starting with a letter or digit, at most 64"
    slug = _NOT_ID_CHARACTERS.sub("-", value.lower()).strip("-_")[:64]
    return f"use {rule}, e.g. {slug}" if slug and ID_RE.fullmatch(slug) else f"use {rule}"


class CellReader:
    """Reads one row's cells into values; each wrong cell adds a :class:`BadRow` to
    ``problems`` and gives None, so a row is read whole and all its problems reported."""

    def __init__(self, row: RawRow, columns: Sequence[Column]) -> None:
        self.row = row
        self.problems: list[BadRow] = []
        self._columns = {c.name: c for c in columns}

    def fail(self, column: str | None, reason: str) -> None:
        """Record a problem with ``column`` (None: the row as a whole)."""
        self.problems.append(BadRow(self.row.line, column, reason))

    def text(self, name: str) -> str:
        """The stripped cell ('' when empty or absent)."""
        return self.row.cells.get(name, "")

    def required(self, name: str) -> str | None:
        """The cell's text; None (and a problem) when it is empty."""
        value = self.text(name)
        if not value:
            column = self._columns[name]
            self.fail(name, f"is empty: give {column.meaning}, e.g. {column.example}")
            return None
        return value

    def identifier(self, name: str, *, required: bool = True) -> str | None:
        """An id (``agrimatch.contract.topics.ID_RE``); None when wrong or optional and empty."""
        value = self.required(name) if required else (self.text(name) or None)
        if value is not None and not ID_RE.fullmatch(value):
            self.fail(name, f"{value!r} is not a valid id: {identifier_hint(value)}")
            return None
        return value

    def choice(self, name: str, catalog: Mapping[str, object], kind: str) -> str | None:
        """A name of ``catalog`` (crops, soils); None when empty or not in it."""
        value = self.required(name)
        if value is None or value in catalog:
            return value
        close = difflib.get_close_matches(value.lower().replace(" ", "_"), list(catalog), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        self.fail(
            name,
            f"{value!r} is not in the {kind} catalog: {hint}use one of {', '.join(catalog)}",
        )
        return None

    def number(
        self,
        name: str,
        *,
        required: bool = True,
        low: float | None = None,
        high: float | None = None,
        above: float | None = None,
    ) -> float | None:
        """A finite decimal number within ``low``..``high`` (inclusive) and over ``above``."""
        value = self.required(name) if required else (self.text(name) or None)
        if value is None:
            return None
        column = self._columns[name]
        try:
            number = float(value)
        except ValueError:
            comma = " (no thousands separators; a point, not a comma, before decimals)"
            tip = comma if "," in value else ""
            self.fail(name, f"{value!r} is not a number{tip}: give {column.meaning}")
            return None
        if not math.isfinite(number):
            self.fail(name, f"{value!r} is not a finite number: give {column.meaning}")
            return None
        if above is not None and number <= above:
            self.fail(name, f"{value} must be above {above:g}: give {column.meaning}")
            return None
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = f"{low:g}..{high:g}" if low is not None and high is not None else ""
            bounds = bounds or (f"at least {low:g}" if low is not None else f"at most {high:g}")
            self.fail(name, f"{value} is outside {bounds}: give {column.meaning}")
            return None
        return number

    def whole_number(self, name: str, *, low: int = 0) -> int | None:
        """A whole number of at least ``low`` ('12' or '12.0')."""
        number = self.number(name, low=low)
        if number is None:
            return None
        if not number.is_integer():
            column = self._columns[name]
            self.fail(name, f"{self.text(name)} is not a whole number: give {column.meaning}")
            return None
        return int(number)

    def day(self, name: str, *, required: bool = True) -> date | None:
        """A date written YYYY-MM-DD; None when wrong or optional and empty."""
        value = self.required(name) if required else (self.text(name) or None)
        if value is None:
            return None
        try:
            if not _ISO_DAY.fullmatch(value):
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError:
            example = self._columns[name].example
            self.fail(name, f"{value!r} is not a date: write YYYY-MM-DD, e.g. {example}")
            return None

    def flag(self, name: str) -> str | None:
        """A yes/no column that may hold a label: None for empty, 0, false or no; else the
        label ('' for a bare 1, yes or true)."""
        value = self.text(name)
        if value.lower() in _FALSE_WORDS:
            return None
        return "" if value.lower() in ("1", "yes", "y", "true") else value


def _raw_row(line: int, header: Sequence[str], cells: Sequence[str]) -> RawRow:
    named = {name: cells[i] if i < len(cells) else "" for i, name in enumerate(header) if name}
    extra = [cell for cell in cells[len(header) :] if cell]
    if extra:
        return RawRow(
            line,
            named,
            f"has {len(cells)} cells but the header names {len(header)} columns: "
            "quote a cell that holds a comma, or name the extra column in the header",
        )
    return RawRow(line, named)


def _check_header(header: Sequence[str], line: int, source: str) -> None:
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise ImportFormatError(
                f"{source} line {line}: column {name!r} appears twice: name each column once"
            )
        seen.add(name)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()
