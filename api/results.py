"""Forecast results for a request: the run asked for, or a problem saying how to get one."""

from __future__ import annotations

from datetime import UTC, date, datetime

from agrimatch.clock import Clock
from api.errors import ProblemError
from api.readings import CHINA
from forecasting.results import ForecastResults
from forecasting.service import ForecastService

HOW_TO_RUN = "run one: `agrimatch forecast run`, or POST /v1/forecasts/run"


def results_or_404(forecasts: ForecastService, as_of: date | None) -> ForecastResults:
    """The newest successful forecast run (of ``as_of`` when given); 404 saying how to run
    one when there is none."""
    results = forecasts.results(as_of)
    if results is None:
        when = f" as of {as_of}" if as_of is not None else ""
        raise ProblemError(
            404,
            f"no forecast run{when} has stored results; {HOW_TO_RUN}",
            slug="no-forecast",
            title="No forecast yet",
        )
    return results


def china_today(clock: Clock) -> date:
    """Today in China, by the app's clock: the day the farms and platforms count in."""
    return datetime.fromtimestamp(clock.now(), tz=UTC).astimezone(CHINA).date()
