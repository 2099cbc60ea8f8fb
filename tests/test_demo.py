"""`polar-flow demo` with DEMO_EXIT_AFTER_MATERIALIZE=1: the fresh-clone path, end to end, on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from polar_pipeline.warehouse.snapshot import read_pointer


def test_demo_materializes_every_mart_for_three_users_and_at_least_120_nights(tmp_path: Path) -> None:
    env = os.environ | {"POLAR_HOME": str(tmp_path / "home"), "DEMO_EXIT_AFTER_MATERIALIZE": "1"}
    env.pop("DAGSTER_HOME", None)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "polar-flow"), "demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "serving snapshot:" in result.stdout
    info = read_pointer(tmp_path / "home" / "serving")
    assert info is not None
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        for column in ("sleep_start", "hrv_rmssd_ms"):  # nights with sleep, nights with Nightly Recharge
            nights = con.execute(
                f"SELECT user_id, count(*) FROM marts.daily_metrics WHERE {column} IS NOT NULL GROUP BY ALL"
            ).fetchall()
            assert len(nights) == 3 and all(count >= 120 for _, count in nights), (column, nights)
        # The day axis starts at the demo's first day of data, not years before it.
        first = con.execute("SELECT min(day) FROM marts.daily_metrics").fetchone()
        assert first is not None and f"[demo] day axis starts {first[0]}" in result.stdout
        # The first person's two years before the synced months came from a Polar account export.
        days = dict(con.execute("SELECT user_id, count(*) FROM marts.daily_metrics GROUP BY ALL").fetchall())
        synced_only = min(days.values())
        assert sorted(count - synced_only >= 600 for count in days.values()) == [False, False, True], days
        assert "[demo] imported a Polar account export for user" in result.stdout
        series = con.execute("SELECT count(DISTINCT user_id) FROM samples.sleep_series").fetchall()
        assert series == [(3,)]
        for mart in (
            "daily_metrics",
            "rolling_metrics",
            "baselines",
            "hrv_status",
            "training_load",
            "sleep_debt",
        ):
            days = con.execute(
                f"SELECT user_id, count(DISTINCT day) FROM marts.{mart} GROUP BY ALL"
            ).fetchall()
            assert len(days) == 3 and all(count >= 120 for _, count in days), (mart, days)
        assert con.execute("SELECT count(DISTINCT user_id) FROM marts.anomalies").fetchall() == [(3,)]
        analytics = [
            table
            for (table,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'analytics' "
                "AND table_type = 'BASE TABLE' ORDER BY 1"
            ).fetchall()
        ]
        assert analytics == [
            "correlations", "data_health", "illness_watch", "insights", "readiness", "recovery", "risk",
            "trends",
        ]  # fmt: skip
        for table in [*analytics, "patterns"]:  # every analytics table (and the view) has rows for each user
            users = con.execute(f"SELECT count(DISTINCT user_id) FROM analytics.{table}").fetchall()
            assert users == [(3,)], table
        said = con.execute("SELECT count(*) FROM analytics.insights WHERE observations <> '[]'").fetchone()
        assert said is not None and said[0] > 0  # the demo's people are told something
    finally:
        con.close()
