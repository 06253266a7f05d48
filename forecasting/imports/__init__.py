"""A cooperative's own data in: farms, fields with their seasons, harvest reports and
platform demand history, as CSV files (the CLI) or records (the API).

Each kind is read row by row and every bad row is reported, with its line
(CSV line, header = line 1; for records the position from 1), the column and
the fix. **An import is all or nothing**: with any bad row nothing is
written, so a file is fixed and imported again whole rather than patched
half-in; ``dry_run=True`` checks without writing. Good rows are upserts, so
importing the same file twice leaves the same rows. Registry writes happen
in the caller's ``Session`` (flushed, not committed: ``with sessions.begin()
as session:`` makes the import one transaction).

Typical use::

    table = read_csv(Path("farms.csv"))          # or table_from_records(json_rows)
    with sessions.begin() as session:
        report = import_farms(session, table, dry_run=False)
    print(report.summary())
    for bad in report.bad_rows: ...

Import farms first (they create regions), then fields (and their seasons),
then harvests and demand.
"""

from forecasting.imports._campaign_history import BASELINE_DAYS, CampaignEffect, measure_campaign
from forecasting.imports._csv import (
    Column,
    ImportFormatError,
    RawRow,
    RawTable,
    parse_csv,
    read_csv,
    table_from_records,
)
from forecasting.imports._report import BadRow, ImportReport
from forecasting.imports.demand import DEMAND_COLUMNS, import_demand
from forecasting.imports.farms import FARM_COLUMNS, import_farms
from forecasting.imports.fields import FIELD_COLUMNS, import_fields
from forecasting.imports.harvests import HARVEST_COLUMNS, import_harvests

__all__ = [
    "BASELINE_DAYS",
    "DEMAND_COLUMNS",
    "FARM_COLUMNS",
    "FIELD_COLUMNS",
    "HARVEST_COLUMNS",
    "BadRow",
    "CampaignEffect",
    "Column",
    "ImportFormatError",
    "ImportReport",
    "RawRow",
    "RawTable",
    "import_demand",
    "import_farms",
    "import_fields",
    "import_harvests",
    "measure_campaign",
    "parse_csv",
    "read_csv",
    "table_from_records",
]
