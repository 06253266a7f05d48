"""The API's rule for imports: the good rows are written, the bad ones reported.

The imports in :mod:`forecasting.imports` are all or nothing, which suits a
file that is fixed and imported again whole. A client pushing rows over
HTTP is better served by keeping what is good: :func:`import_good_rows`
checks the rows with a dry run, drops every row with a problem, checks the
rest again (dropping a row can change nothing for the others, but the loop
makes sure) and imports the rows that are left, all in the caller's
transaction. The checks are the imports' own; nothing is validated twice in
two ways.

A single resource written through an import (a farm, a field) is all or
nothing: :func:`import_one` turns its bad cells into a 422 problem naming each.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from api.errors import ProblemError
from api.schemas.imports import BadRowPublic, ImportResult
from forecasting.imports import (
    BadRow,
    ImportFormatError,
    ImportReport,
    RawRow,
    RawTable,
    table_from_records,
)

Importer = Callable[[RawTable, bool], ImportReport]
"""``(table, dry_run) -> report``: one import kind bound to a session (and store)."""


@dataclass(frozen=True, slots=True)
class PartialImport:
    """What an import of the good rows did: the report of the rows written (None when no
    row was good) and every bad row of the request, with its position and reason."""

    kind: str
    rows: int
    written: ImportReport | None
    bad_rows: tuple[BadRow, ...]
    ignored_columns: tuple[str, ...]

    @property
    def rows_written(self) -> int:
        return 0 if self.written is None else self.written.rows


def import_good_rows(
    kind: str, table: RawTable, run: Importer, refused: Sequence[BadRow] = ()
) -> PartialImport:
    """Import the rows of ``table`` that have no problem; report those that have.

    ``refused`` are rows the caller refuses before the import sees them (a
    farm outside the key's scope, another platform's demand); they are left
    out and reported with the rest. Raises
    :class:`~forecasting.imports.ImportFormatError` as the import does (a
    required column missing from every row).
    """
    bad = list(refused)
    dropped = {b.line for b in bad}
    rows = [row for row in table.rows if row.line not in dropped]
    ignored: tuple[str, ...] = ()
    written: ImportReport | None = None
    # Each pass drops at least one row or ends, so there are at most len(rows) + 1.
    while rows:
        report = run(_table(table, rows), True)
        ignored = report.ignored_columns
        if report.ok:
            written = run(_table(table, rows), False)
            if not written.ok:  # the same checks on the same rows: cannot differ
                raise RuntimeError(f"the {kind} import found problems its dry run did not")
            break
        bad.extend(report.bad_rows)
        dropped = {b.line for b in report.bad_rows}
        rows = [row for row in rows if row.line not in dropped]
    # By position; the problems of one row stay in the order found (column order).
    ordered = tuple(sorted(bad, key=lambda b: b.line))
    return PartialImport(kind, len(table.rows), written, ordered, ignored)


def import_result(done: PartialImport) -> ImportResult:
    """What a client is told of a partial import."""
    written = done.written
    return ImportResult(
        kind=done.kind,
        rows=done.rows,
        rows_written=done.rows_written,
        counts=dict(written.counts) if written else {},
        bad_rows=[
            BadRowPublic(position=b.line, column=b.column, reason=b.reason) for b in done.bad_rows
        ],
        ignored_columns=list(done.ignored_columns),
        notes=list(written.notes) if written else [],
    )


def _table(table: RawTable, rows: Sequence[RawRow]) -> RawTable:
    # The columns stay the request's: a column only bad rows gave is still "given".
    return RawTable(table.columns, tuple(rows), table.source)


def import_one(
    kind: str, record: Mapping[str, object], run: Importer, *, in_path: Collection[str] = ()
) -> ImportReport:
    """Import one record (a request's resource) with the import's checks, or raise a 422
    problem naming each bad column; ``in_path`` are columns the request's path gave."""
    try:
        report = run(table_from_records([record]), False)
    except ImportFormatError as exc:
        raise ProblemError(
            422, str(exc), slug="validation", title="Request validation failed"
        ) from None
    if report.ok:
        return report
    # The import's reasons read after their column ("area_ha is above ..."), so say both.
    details = [f"{b.column} {b.reason}" if b.column else b.reason for b in report.bad_rows]
    errors = [
        {
            "in": "path" if bad.column in in_path else "body",
            "field": bad.column or "",
            "pointer": None if bad.column in in_path else f"#/{bad.column or ''}",
            "detail": detail,
        }
        for bad, detail in zip(report.bad_rows, details, strict=True)
    ]
    raise ProblemError(
        422,
        f"the {kind} is not valid: " + "; ".join(details),
        slug="validation",
        title="Request validation failed",
        errors=errors,
    )
