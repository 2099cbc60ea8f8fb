"""A POLAR_HOME written by the first release is brought to the current layout on first use, losing nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from polar_pipeline.migrate import LAYOUT_VERSION, VERSION_FILE, layout_version, migrate_home
from polar_pipeline.orchestration.event_log import FastSqliteEventLogStorage
from polar_pipeline.orchestration.home import MARKER, prepare_dagster_home
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.snapshot import publish_snapshot
from polar_pipeline.warehouse.writer import connect_writer
from tests.transform.checksums import table_checksum
from tests.transform.conftest import SimWarehouse

RECORDED = json.loads((Path(__file__).parent / "mart_checksums.json").read_text())
OLD_DAGSTER_YAML = f"""{MARKER} (rewritten when it changes; remove this line to keep your own edits).
event_log_storage:
  module: polar_pipeline.dagster_storage
  class: FastSqliteEventLogStorage
  config:
    base_dir: {{base}}
"""


def _raw_digest(path: Path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = [
            con.execute(f"SELECT * FROM raw.{table} ORDER BY ALL").fetchall()
            for table in ("sleep", "nightly_recharge", "activity", "exercises", "quarantine")
        ]
    finally:
        con.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture
def old_home(sim_marts: SimWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A home as the first release left it: marts of the old shape, the old dagster.yaml, no records."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(sim_marts.path, home / "warehouse.duckdb")
    con = connect_writer(home / "warehouse.duckdb")
    try:
        old_columns = RECORDED["daily_metrics"]["columns"]
        current = [name for (name, *_rest) in con.execute("DESCRIBE marts.daily_metrics").fetchall()]
        for column in current:
            if column not in old_columns:
                con.execute(f"ALTER TABLE marts.daily_metrics DROP COLUMN {column}")
    finally:
        con.close()
    dagster_home = home / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        OLD_DAGSTER_YAML.format(base=dagster_home / "history" / "runs")
    )
    monkeypatch.setenv("POLAR_HOME", str(home))
    monkeypatch.delenv("POLAR_HISTORY_START", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return Settings()


def test_an_old_home_is_migrated_on_first_use_with_nothing_lost(
    old_home: Settings, sim_marts: SimWarehouse
) -> None:
    settings = old_home
    raw_before = _raw_digest(settings.warehouse_path)
    assert layout_version(settings) == 1

    home = prepare_dagster_home(settings)  # what every polar-flow command does first

    assert (settings.home_dir / VERSION_FILE).read_text().strip() == str(LAYOUT_VERSION)
    assert (settings.home_dir / "history-start").read_text().strip() == sim_marts.first_day.isoformat()
    assert _raw_digest(settings.warehouse_path) == raw_before
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        for mart, recorded in RECORDED.items():
            assert table_checksum(con, f"marts.{mart}", recorded["columns"]) == (
                recorded["rows"],
                recorded["sha256"],
            ), mart
        filled = con.execute(
            "SELECT count(sleep_start), count(sleep_hr_avg_bpm) FROM marts.daily_metrics"
        ).fetchone()
    finally:
        con.close()
    assert filled is not None and filled[0] > 1000 and filled[1] > 1000
    assert "polar_pipeline.orchestration.event_log" in (home / "dagster.yaml").read_text()
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, FastSqliteEventLogStorage)

    # The first publish of the migrated home fills the sample store and serves its views.
    con = connect_writer(settings.warehouse_path)
    try:
        info = publish_snapshot(con, settings.snapshots_dir, samples_dir=settings.samples_dir)
    finally:
        con.close()
    reader = duckdb.connect(str(info.path), read_only=True)
    try:
        nights = reader.execute(
            "SELECT count(*) FROM samples.sleep_series WHERE series = 'hypnogram'"
        ).fetchone()
        assert nights is not None and nights[0] == RECORDED["daily_metrics"]["rows"] - _nights_missing(reader)
    finally:
        reader.close()

    again = migrate_home(settings)  # idempotent: nothing left to do
    assert again.from_version == LAYOUT_VERSION and again.rebuilt == ()


def _nights_missing(reader: duckdb.DuckDBPyConnection) -> int:
    row = reader.execute("SELECT count(*) FROM marts.daily_metrics WHERE sleep_start IS NULL").fetchone()
    return int(row[0]) if row else 0
