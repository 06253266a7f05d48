"""What an import did, or why it wrote nothing: its report and its bad rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BadRow:
    """One problem of one row: its line (CSV line, header = 1; for records the position
    from 1), the column (None: the row as a whole) and the reason, which says the fix."""

    line: int
    column: str | None
    reason: str


def by_line(bad_rows: Iterable[BadRow]) -> tuple[BadRow, ...]:
    """Problems ordered by line; those of one line stay in the order found (column order)."""
    return tuple(sorted(bad_rows, key=lambda bad: bad.line))


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The outcome of one import.

    ``rows`` is the number of rows read; ``bad_rows`` every problem found,
    ordered by line. ``counts`` says what was written (a dry run: what would
    be), e.g. ``{"farms": 12, "regions (new)": 1}``; it is empty when there
    are bad rows, because then nothing is written. ``ignored_columns`` are
    columns the kind does not know; ``notes`` say what was derived (a
    campaign's estimated uplift, say).
    """

    kind: str
    rows: int
    bad_rows: tuple[BadRow, ...]
    counts: Mapping[str, int]
    dry_run: bool
    ignored_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """No bad row: everything was written (or, in a dry run, would be)."""
        return not self.bad_rows

    @property
    def written(self) -> bool:
        """Whether this import wrote anything: no bad rows and not a dry run."""
        return self.ok and not self.dry_run

    @property
    def bad_lines(self) -> int:
        """How many rows have at least one problem."""
        return len({bad.line for bad in self.bad_rows})

    def summary(self) -> str:
        """One sentence: what was written, what would be, or why nothing was."""
        if not self.ok:
            return (
                f"{self.bad_lines} of {self.rows} {self.kind} rows are bad: nothing written "
                "(an import is all or nothing); fix them and import the file again"
            )
        what = ", ".join(f"{count:,} {name}" for name, count in self.counts.items()) or "nothing"
        if self.dry_run:
            return (
                f"{self.rows} {self.kind} rows are good (dry run, nothing written): "
                f"would write {what}"
            )
        return f"{self.rows} {self.kind} rows imported: wrote {what}"
