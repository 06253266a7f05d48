"""The README's example CSVs import as they are, in the order it gives."""

from __future__ import annotations

import re
from pathlib import Path

from forecasting.imports import import_demand, import_farms, import_fields, import_harvests
from tests.imports.conftest import csv

README = Path(__file__).resolve().parents[2] / "README.md"


def _examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Bringing your own data", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```csv\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_examples_of_farms_fields_harvests_and_demand_import_cleanly(
    sessions, embedded_store
):
    farms, fields, harvests, demand = _examples()
    for run in (
        lambda session: import_farms(session, csv(farms)),
        lambda session: import_fields(session, csv(fields)),
        lambda session: import_harvests(session, csv(harvests)),
        lambda session: import_demand(session, embedded_store, csv(demand)),
    ):
        with sessions.begin() as session:
            report = run(session)
        assert report.written, report.bad_rows
    assert report.counts == {"demand days": 3, "platforms (new)": 1, "campaigns (history)": 1}
