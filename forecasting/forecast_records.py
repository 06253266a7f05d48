"""The field forecasts stored by earlier runs, read back as a calibration set.

:func:`stored_field_forecasts` is the registry read behind
:func:`forecasting.interval_calibration.stored_residuals`: every field forecast
made before a date for the seasons that were harvested by then, one row per
stored forecast. Only seasons with a recorded yield are read: the rest cannot
be scored.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from agrimatch.registry.models import FieldForecast, Season
from forecasting.interval_calibration import STORED_COLUMNS


def stored_field_forecasts(session: Session, before: date) -> pd.DataFrame:
    """Field forecasts made before ``before`` of the seasons harvested before it, as
    :data:`~forecasting.interval_calibration.STORED_COLUMNS`."""
    harvested = and_(
        Season.farm_id == FieldForecast.farm_id,
        Season.field_id == FieldForecast.field_id,
        Season.year == FieldForecast.year,
        Season.yield_t_ha.is_not(None),
        Season.harvest_end < before,
    )
    query = (
        select(
            FieldForecast.farm_id,
            FieldForecast.field_id,
            FieldForecast.year,
            FieldForecast.crop,
            FieldForecast.as_of,
            FieldForecast.yield_t_ha_p10,
            FieldForecast.yield_t_ha_p90,
            FieldForecast.yield_t_ha_p10_model,
            FieldForecast.yield_t_ha_p90_model,
        )
        .join(Season, harvested)
        .where(FieldForecast.as_of < before)
        .order_by(FieldForecast.id)
    )
    rows = session.execute(query).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(STORED_COLUMNS))
    for column in ("yield_t_ha_p10_model", "yield_t_ha_p90_model"):
        frame[column] = frame[column].astype(float)
    return frame
