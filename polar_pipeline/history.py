"""Where the day axis starts: near the first day of data, fixed once, never moved later on its own.

Every user × day asset has a partition for each day from this start, so a start far before the data shows
thousands of empty partitions in the UI (and costs Dagster work). ``POLAR_HISTORY_START`` sets it. When it
is unset, the start is fixed at first setup and recorded in ``$POLAR_HOME/history-start``: the first day
with data in the warehouse (an existing home), else the install day minus 28 (AccessLink serves ~28 days
back). Later loads read the record, so the axis never moves by itself. ``extend_history_start`` moves it
earlier (the account-export importer brings older days); that adds partitions and removes none.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import duckdb

from polar_pipeline import clock
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.schema import raw_extent

RECORD_NAME = "history-start"
ACCESSLINK_WINDOW_DAYS = 28


def history_start(settings: Settings, *, today: date | None = None) -> date:
    """The configured start, else the recorded one, else fix it now (first data day or today − 28)."""
    if settings.history_start is not None:
        return settings.history_start
    recorded = _read(settings)
    if recorded is not None:
        return recorded
    fallback = (today or clock.today(settings)) - timedelta(days=ACCESSLINK_WINDOW_DAYS)
    try:
        first = first_data_day(settings.warehouse_path)
    except duckdb.IOException:
        return fallback  # a writer holds the warehouse: decide (and record) on a later load
    start = first or fallback
    _write(settings, start)
    return start


def extend_history_start(settings: Settings, day: date) -> date:
    """Move the recorded start to ``day`` if that is earlier; never later. Returns the start in force."""
    current = history_start(settings)
    if day < current and settings.history_start is None:
        _write(settings, day)
        return day
    return current


def first_data_day(warehouse: Path) -> date | None:
    """The earliest day of any raw record, or None for a missing or empty warehouse.

    Opened read-only; raises ``duckdb.IOException`` while a writer holds the warehouse (unknown, not empty).
    """
    if not warehouse.exists():
        return None
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return raw_extent(con)[1]
    finally:
        con.close()


def _path(settings: Settings) -> Path:
    return settings.home_dir / RECORD_NAME


def _read(settings: Settings) -> date | None:
    try:
        return date.fromisoformat(_path(settings).read_text().strip())
    except FileNotFoundError:
        return None


def _write(settings: Settings, start: date) -> None:
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(start.isoformat() + "\n")
    os.replace(tmp, path)
