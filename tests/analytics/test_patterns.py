"""analytics.patterns in a published snapshot: polar-flow-server's pattern list, read from analytics rows."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from polar_pipeline.warehouse.snapshot import publish_snapshot
from polar_pipeline.warehouse.writer import connect_writer

NAMES = {
    "sleep_hrv_correlation", "training_recovery_lag", "activity_sleep_correlation", "overtraining_risk",
    "recovery_readiness", "hrv_trend", "sleep_trend", "resting_hr_trend", "illness_watch",
}  # fmt: skip


@pytest.fixture(scope="module")
def published(
    sim_analytics: dict[str, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, pl.DataFrame]]:
    tables = {name: frame for name, frame in sim_analytics.items() if name != "readiness"}
    root = tmp_path_factory.mktemp("patterns")
    con = connect_writer(root / "warehouse.duckdb")
    try:
        con.execute("CREATE SCHEMA analytics")
        for name, frame in tables.items():
            con.register("frame", frame)
            con.execute(f"CREATE TABLE analytics.{name} AS SELECT * FROM frame")
            con.unregister("frame")
        info = publish_snapshot(con, root / "serving")
    finally:
        con.close()
    return info.path, tables


def test_the_pattern_list_reads_every_pattern_from_its_analytics_row(
    published: tuple[Path, dict[str, pl.DataFrame]],
) -> None:
    path, tables = published
    snapshot = duckdb.connect(str(path), read_only=True)
    try:
        rows = snapshot.sql("SELECT * FROM analytics.patterns").pl()
    finally:
        snapshot.close()
    assert set(rows["pattern_name"]) == NAMES
    assert rows.select("user_id", "day", "pattern_name").is_duplicated().sum() == 0
    # The correlation patterns carry the pair's lag with the smallest q, and its rho as the score.
    sleep_hrv = rows.filter(pl.col("pattern_name") == "sleep_hrv_correlation").sort("user_id", "day")
    expected = (
        tables["correlations"]
        .filter((pl.col("x_metric") == "sleep_score") & (pl.col("y_metric") == "ln_rmssd"))
        .sort("user_id", "day", pl.col("q_value"), "lag_days", nulls_last=True)
        .group_by("user_id", "day", maintain_order=True)
        .first()
    )
    assert sleep_hrv["score"].to_list() == expected["rho"].to_list()
    lags = [json.loads(d)["lag_days"] for d in sleep_hrv["details"]]
    assert lags == expected["lag_days"].to_list()
    significance = sleep_hrv["significance"].to_list()
    q = expected["q_value"].to_list()
    assert significance == [
        "high" if v is not None and v < 0.01 else "medium" if v is not None and v < 0.05 else "low" for v in q
    ]
    # Risk: score and level as stored, confidence = available factors out of four.
    overtraining = rows.filter(pl.col("pattern_name") == "overtraining_risk").sort("user_id", "day")
    source = tables["risk"].sort("user_id", "day")
    assert overtraining["score"].to_list() == source["overtraining_score"].to_list()
    assert overtraining["significance"].to_list() == source["level"].to_list()
    available = [sum(f["available"] for f in json.loads(text)) / 4 for text in source["factors"]]
    assert overtraining["confidence"].to_list() == available
    # Illness: the score counts the signals that fired, and flagged days say so in their details.
    watch = rows.filter(pl.col("pattern_name") == "illness_watch").sort("user_id", "day")
    fired = [
        sum(bool(s["fired"]) for s in json.loads(text))
        for text in tables["illness_watch"].sort("user_id", "day")["signals"]
    ]
    assert watch["score"].to_list() == fired
    assert any(json.loads(d)["flagged"] for d in watch["details"])
