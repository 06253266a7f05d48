"""The festival days that move demand on China's platforms, per year.

Spring Festival and Mid-Autumn follow the lunar calendar: their dates come
from China's official holiday calendar in the ``holidays`` package, never a
hand-typed table. 618 and Double 11 are the platforms' fixed shopping days.
One definition for the simulator's market and the forecaster's calendar.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays

SPRING_FESTIVAL = "spring_festival"
MID_AUTUMN = "mid_autumn"
SHOPPING_618 = "shopping_618"
DOUBLE_11 = "double_11"
FESTIVALS = (SPRING_FESTIVAL, MID_AUTUMN, SHOPPING_618, DOUBLE_11)
LUNAR_FESTIVALS = (SPRING_FESTIVAL, MID_AUTUMN)

# The names as China's calendar writes them in Chinese: stable, where the English
# translations have changed between ``holidays`` releases.
_LUNAR_HOLIDAY_NAMES = {SPRING_FESTIVAL: "春节", MID_AUTUMN: "中秋节"}
# Platform shopping festivals are fixed Gregorian days: (month, day).
_SHOPPING_DAYS = {SHOPPING_618: (6, 18), DOUBLE_11: (11, 11)}


def festival_days(year: int) -> dict[str, date]:
    """The day of each festival in ``year``, keyed by the names in :data:`FESTIVALS`.

    A lunar festival the holiday calendar has no date for that year (Mid-Autumn
    became a public holiday in 2008) is left out.
    """
    return dict(_festival_days(year))


@lru_cache(maxsize=512)
def _festival_days(year: int) -> tuple[tuple[str, date], ...]:
    # Cached as a tuple, so no caller can change what the next one gets.
    found = [(name, date(year, month, day)) for name, (month, day) in _SHOPPING_DAYS.items()]
    calendar = holidays.country_holidays("CN", years=year, language="zh_CN")
    for name, holiday_name in _LUNAR_HOLIDAY_NAMES.items():
        # The festival day is the first day named exactly so: the rest of the
        # holiday carries the name too, and makeup days add a suffix to it.
        days = [
            day
            for day, names in calendar.items()
            if day.year == year and holiday_name in str(names).split("; ")
        ]
        if days:
            found.append((name, min(days)))
    return tuple(found)
