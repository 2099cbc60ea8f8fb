"""The day axis starts near the data, is fixed once, and only ever moves earlier when asked."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from polar_pipeline.history import RECORD_NAME, extend_history_start, history_start
from polar_pipeline.orchestration.partitions import DAY_DIMENSION, user_day_partitions
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.raw_store import RawBatch, RawRecord, store_raw_batches
from polar_pipeline.warehouse.schema import ensure_raw_schema
from polar_pipeline.warehouse.writer import connect_writer

TODAY = date(2026, 3, 1)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("POLAR_HOME", str(tmp_path))
    monkeypatch.delenv("POLAR_HISTORY_START", raising=False)
    monkeypatch.delenv("POLAR_PARTITION_START_DATE", raising=False)
    return Settings()


def _store_activity(settings: Settings, *days: date) -> None:
    con = connect_writer(settings.warehouse_path)
    try:
        ensure_raw_schema(con)
        records = [
            RawRecord(day.isoformat(), day, json.dumps({"start_time": f"{day}T00:00:00"})) for day in days
        ]
        store_raw_batches(
            con,
            "activity",
            {"u1": RawBatch(records)},
            source="test",
            fetched_at=datetime(2026, 3, 1, tzinfo=UTC),
        )
    finally:
        con.close()


def test_a_new_install_starts_28_days_back_and_records_it(settings: Settings) -> None:
    assert history_start(settings, today=TODAY) == date(2026, 2, 1)
    assert (settings.home_dir / RECORD_NAME).read_text().strip() == "2026-02-01"
    # Fixed once: a later day, or data arriving, does not move it.
    _store_activity(settings, date(2026, 1, 10))
    assert history_start(settings, today=date(2027, 1, 1)) == date(2026, 2, 1)


def test_an_existing_warehouse_starts_at_its_first_data_day(settings: Settings) -> None:
    _store_activity(settings, date(2025, 6, 3), date(2025, 5, 20))
    assert history_start(settings, today=TODAY) == date(2025, 5, 20)
    partitions = user_day_partitions(settings)
    days = partitions.get_partitions_def_for_dimension(DAY_DIMENSION)
    assert days.get_first_partition_key() == "2025-05-20"  # type: ignore[attr-defined]


def test_moving_the_start_earlier_adds_partitions_and_later_is_refused(settings: Settings) -> None:
    _store_activity(settings, date(2025, 6, 3))
    before = history_start(settings, today=TODAY)
    assert extend_history_start(settings, date(2024, 1, 1)) == date(2024, 1, 1)
    assert extend_history_start(settings, date(2025, 1, 1)) == date(2024, 1, 1)
    assert history_start(settings) == date(2024, 1, 1) < before
    days = user_day_partitions(settings).get_partitions_def_for_dimension(DAY_DIMENSION)
    keys = days.get_partition_keys(current_time=datetime(2026, 3, 1, tzinfo=UTC))
    assert keys[0] == "2024-01-01" and before.isoformat() in keys


def test_the_setting_wins_and_the_old_name_is_still_read(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLAR_PARTITION_START_DATE", "2023-03-03")
    assert history_start(Settings()) == date(2023, 3, 3)
    monkeypatch.setenv("POLAR_HISTORY_START", "2022-02-02")
    assert history_start(Settings()) == date(2022, 2, 2)
    assert not (settings.home_dir / RECORD_NAME).exists()
    monkeypatch.setenv("POLAR_HISTORY_START", "2022-13-45")
    with pytest.raises(ValueError, match="POLAR_HISTORY_START"):
        Settings()
