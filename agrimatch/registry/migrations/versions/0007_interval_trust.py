"""Field forecasts say how far their yield interval can be trusted and what calibrated it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

``interval_trust`` ("ok" or "few_seasons") with the ``training_seasons`` behind it,
``calibration`` (cross_validated, stored_residuals or past_yields), and the model's own
P10/P90 before a stored-residual calibration (the next calibration's residuals are
taken against them). Hand-written; names as in ``agrimatch/registry/models.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "field_forecasts"
COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("interval_trust", sa.String(20)),
    ("training_seasons", sa.Integer()),
    ("calibration", sa.String(40)),
    ("yield_t_ha_p10_model", sa.Double()),
    ("yield_t_ha_p90_model", sa.Double()),
)


def upgrade() -> None:
    # Nullable columns without constraints: SQLite adds them in place, no batch rebuild;
    # forecasts stored before read them as unknown.
    for name, kind in COLUMNS:
        op.add_column(TABLE, sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
