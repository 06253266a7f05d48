"""The festival calendar: the days on which Chinese shoppers buy more food.

Four peaks matter for farm produce on social-commerce platforms:

* Spring Festival (lunar new year) and Mid-Autumn (lunar 8/15): gift boxes of
  fruit, nuts and dried jujubes are bought in the one to three weeks before
  the festival, so the peak sits before the day. Around Spring Festival itself
  couriers stop, so demand dips for about a week after it.
* 618 (June 18) and Double 11 (November 11): platform shopping festivals with
  pre-sales; buying concentrates on the day and the few days before it.

The lunar dates come from the ``holidays`` package (China's official holiday
calendar, year by year), never typed in here. 618 and Double 11 are fixed
Gregorian dates.

A festival's effect is an excess over normal demand given at knots (days
relative to the festival day) and interpolated linearly between them; the
multiplier for a profile is ``(1 + excess) ** sensitivity``, so sensitivity 0
ignores festivals, 1 gives the excess as written, and a dip never turns
demand negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from agrimatch import festivals

SPRING_FESTIVAL = "spring_festival"
MID_AUTUMN = "mid_autumn"
SHOPPING_618 = "618"
DOUBLE_11 = "double_11"

# Names as China's calendar in ``holidays`` writes them in its source language;
# the Chinese names are the stable ones (translations vary between releases).


@dataclass(frozen=True, slots=True)
class FestivalRule:
    """How demand moves around one festival.

    ``knots`` are ``(days relative to the festival day, excess demand)`` pairs,
    in increasing day order; excess is 0 outside the first and last knot.
    """

    name: str
    knots: tuple[tuple[int, float], ...]

    @property
    def reach_days(self) -> tuple[int, int]:
        """First and last day (relative to the festival) the rule touches."""
        return self.knots[0][0], self.knots[-1][0]


# The excess sizes are a simulator's guesses in the order seen in platform
# reports (Spring Festival gift buying roughly doubles fruit sales; Double 11 is
# the platforms' biggest day), not measured values.
FESTIVAL_RULES: tuple[FestivalRule, ...] = (
    FestivalRule(
        SPRING_FESTIVAL,
        # Buying starts three weeks out, is strongest in the second and third
        # week before, eases off as couriers stop, and dips over the holiday week.
        ((-21, 0.0), (-14, 0.9), (-5, 0.9), (-2, 0.3), (0, -0.3), (6, -0.3), (10, 0.0)),
    ),
    FestivalRule(
        MID_AUTUMN,
        # Gift buying in the three weeks before; no courier stop afterwards.
        ((-21, 0.0), (-12, 0.6), (-4, 0.6), (0, 0.1), (2, 0.0)),
    ),
    FestivalRule(
        SHOPPING_618,
        # Pre-sales from early June, the peak on the day itself.
        ((-17, 0.0), (-3, 0.15), (-1, 0.3), (0, 0.5), (1, 0.0)),
    ),
    FestivalRule(
        DOUBLE_11,
        # Pre-sales from late October, the platforms' biggest day on 11.11.
        ((-20, 0.0), (-10, 0.15), (-2, 0.3), (-1, 0.5), (0, 1.0), (1, 0.1), (2, 0.0)),
    ),
)


def festival_dates(year: int) -> dict[str, date]:
    """The festival days of ``year``, keyed by festival name.

    Spring Festival and Mid-Autumn come from China's official holiday calendar
    in ``holidays``; a year it has no date for (Mid-Autumn became a public
    holiday only in 2008) is left out, and :func:`festival_multiplier` refuses
    ranges that need it.
    """
    return dict(_festival_days(year))


def _festival_days(year: int) -> tuple[tuple[str, date], ...]:
    # The kernel's calendar, with this module's name for 618.
    names = {festivals.SHOPPING_618: SHOPPING_618}
    return tuple((names.get(k, k), d) for k, d in festivals.festival_days(year).items())


def festival_multiplier(start: date, end: date, sensitivity: float = 1.0) -> NDArray[np.float64]:
    """Per-day demand multiplier from festivals, for ``start`` to ``end`` inclusive.

    ``sensitivity`` scales the effect in the exponent (0 = no festival effect,
    1 = the rules as written, 2 = squared). Raises ``ValueError`` for an empty
    range, a negative sensitivity, or a year in the range that the holiday
    calendar has no Spring Festival or Mid-Autumn date for.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if sensitivity < 0:
        raise ValueError(f"sensitivity must be >= 0, got {sensitivity}")
    n_days = (end - start).days + 1
    log_multiplier = np.zeros(n_days)
    offsets = np.arange(n_days)
    # A festival early in the next year (Spring Festival) ramps into late December,
    # and one late in the previous year (a post-festival dip) reaches into January.
    for year in range(start.year - 1, end.year + 2):
        days = festival_dates(year)
        for rule in FESTIVAL_RULES:
            day = days.get(rule.name)
            if day is None:
                if start.year <= year <= end.year:
                    raise ValueError(
                        f"the holiday calendar has no {rule.name} date for {year}; "
                        "festival demand cannot be simulated for that year"
                    )
                continue
            first, last = rule.reach_days
            if day + timedelta(days=last) < start or day + timedelta(days=first) > end:
                continue
            relative = offsets - (day - start).days
            knot_days = [k for k, _ in rule.knots]
            knot_excess = [e for _, e in rule.knots]
            excess = np.interp(relative, knot_days, knot_excess, left=0.0, right=0.0)
            log_multiplier += np.log1p(excess)
    return np.asarray(np.exp(sensitivity * log_multiplier), dtype=np.float64)
