"""Rows pushed over HTTP (harvest reports, platform demand) and what became of them.

A row's cells are JSON scalars and are checked by the import of their kind
(:mod:`forecasting.imports`), the same checks a CSV file gets, so a bad cell
makes a bad row with its reason rather than failing the whole request.
Columns the kind does not know are reported as ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from forecasting.imports import DEMAND_COLUMNS, HARVEST_COLUMNS, Column

Cell = str | int | float | bool | None
MAX_ROWS = 5000


def _cell(columns: Sequence[Column], name: str) -> Any:
    """A cell field documented from the import column of that name."""
    column = next(c for c in columns if c.name == name)
    return Field(default=None, description=column.meaning, examples=[column.example])


class HarvestRowIn(BaseModel):
    """A harvest report of one field-season; give ``yield_t_ha`` or ``quantity_t``.

    ``reported_by`` is the key that pushes the row.
    """

    model_config = ConfigDict(extra="allow")

    farm: Cell = _cell(HARVEST_COLUMNS, "farm")
    field: Cell = _cell(HARVEST_COLUMNS, "field")
    season: Cell = _cell(HARVEST_COLUMNS, "season")
    harvest_start: Cell = _cell(HARVEST_COLUMNS, "harvest_start")
    harvest_end: Cell = _cell(HARVEST_COLUMNS, "harvest_end")
    yield_t_ha: Cell = _cell(HARVEST_COLUMNS, "yield_t_ha")
    quantity_t: Cell = _cell(HARVEST_COLUMNS, "quantity_t")
    harvest_peak: Cell = _cell(HARVEST_COLUMNS, "harvest_peak")


class HarvestsIn(BaseModel):
    rows: list[HarvestRowIn] = Field(min_length=1, max_length=MAX_ROWS)


class DemandRowIn(BaseModel):
    """One day (or the Monday of a week) of the key's platform's sales of a crop from a
    region; the platform is the key's."""

    model_config = ConfigDict(extra="allow")

    crop: Cell = _cell(DEMAND_COLUMNS, "crop")
    region: Cell = _cell(DEMAND_COLUMNS, "region")
    day: Cell = _cell(DEMAND_COLUMNS, "day")
    quantity_kg: Cell = _cell(DEMAND_COLUMNS, "quantity_kg")
    orders: Cell = _cell(DEMAND_COLUMNS, "orders")
    price_cny_per_kg: Cell = _cell(DEMAND_COLUMNS, "price_cny_per_kg")
    campaign: Cell = _cell(DEMAND_COLUMNS, "campaign")


class DemandIn(BaseModel):
    rows: list[DemandRowIn] = Field(min_length=1, max_length=MAX_ROWS)


class BadRowPublic(BaseModel):
    """One problem of one row: its position in ``rows`` (from 1), the column (null: the row
    as a whole) and the reason, which says the fix."""

    position: int
    column: str | None
    reason: str


class ImportResult(BaseModel):
    """The good rows were written; each bad row is listed and nothing of it was written."""

    kind: str
    rows: int = Field(description="rows received")
    rows_written: int
    counts: dict[str, int] = Field(description="what was written, e.g. demand days")
    bad_rows: list[BadRowPublic]
    ignored_columns: list[str] = Field(description="columns this kind does not know")
    notes: list[str] = Field(description="what was derived, e.g. a campaign's uplift")
