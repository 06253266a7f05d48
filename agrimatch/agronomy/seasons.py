"""Which calendar days belong to a crop's season ``year``.

A season is named by the year its crop is harvested: garlic sown in October
2023 is season 2024. One definition, shared by the world model (simulation),
the registry (plans and truth) and the forecaster.
"""

from __future__ import annotations

from datetime import date, timedelta

from agrimatch.agronomy.crops import CROPS, CropSpec


def planting_date(crop: CropSpec | str, planting: str, year: int) -> date:
    """The planting (bud-break) day of season ``year``; autumn-sown crops in ``year - 1``.

    ``planting`` is "MM-DD"; a day past the month's end (02-29 in a common
    year) is the month's last day.
    """
    spec = CROPS[crop] if isinstance(crop, str) else crop
    month, day = (int(x) for x in planting.split("-"))
    calendar_year = year - 1 if spec.sown_before_winter else year
    last = (date(calendar_year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return date(calendar_year, month, min(day, last))


def season_year_of(crop: CropSpec | str, planting: str, day: date) -> int:
    """The season whose crop year holds ``day``."""
    for year in (day.year + 1, day.year, day.year - 1):
        if planting_date(crop, planting, year) <= day:
            return year
    return day.year - 2  # unreachable for real month-days; keeps the type simple
