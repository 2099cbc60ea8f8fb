"""``polar-flow import``: a simulated account export for a user who never connected AccessLink.

The simulator writes the export from the same payloads it serves over AccessLink, so the marts built from the
import must hold, for the days AccessLink still serves, exactly what the AccessLink client fetches (an
independent path: HTTP and the payloads' own fields, not the warehouse's SQL).
"""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from polar_pipeline import cli
from polar_pipeline.accesslink import AccessLinkClient
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME
from polar_pipeline.simulator import SimulatorConfig
from polar_pipeline.simulator.export import write_export
from polar_pipeline.warehouse.snapshot import read_pointer
from tests.conftest import RAW_TABLE_NAMES, TEST_TODAY, Pipeline

DAYS = 60
FIRST = TEST_TODAY - timedelta(days=DAYS - 1)
USER = "imported-only"


def _export(tmp_path: Path) -> Path:
    """User 0's last 60 days, as the fixture's simulator (seed 11, 3 users, TEST_TODAY) serves them."""
    target = tmp_path / "polar-user-data-export_test.zip"
    config = SimulatorConfig(seed=11, users=3, today=TEST_TODAY)
    write_export(config, 0, target, first_day=FIRST, last_day=TEST_TODAY, samples=False)
    return target


def _fingerprint(pipeline: Pipeline) -> dict[str, str]:
    """Each raw table without its bookkeeping column, and the user's daily metrics."""
    digests = {}
    for name in RAW_TABLE_NAMES:
        exclude = " EXCLUDE (fetched_at)" if name != "quarantine" else ""
        rows = pipeline.query(f"SELECT *{exclude} FROM raw.{name} ORDER BY ALL")
        digests[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    marts = pipeline.query("SELECT * FROM marts.daily_metrics WHERE user_id = ? ORDER BY ALL", [USER])
    digests["marts.daily_metrics"] = hashlib.sha256(repr(marts).encode()).hexdigest()
    return digests


def _served_by_accesslink(pipeline: Pipeline) -> dict[Any, dict[str, Any]]:
    """Per day AccessLink serves: sleep seconds, RMSSD and steps, from the payloads' own fields."""
    token = pipeline.users[0]["access_token"]
    expected: dict[Any, dict[str, Any]] = {}
    with AccessLinkClient(pipeline.sim_url, token_url="", client_id="", client_secret="") as client:
        client.register_user(token, "export-check")  # AccessLink serves registered users only
        for night in client.fetch_sleep(token, FIRST, TEST_TODAY).records:
            p = night.payload
            stages = [p.get(k) for k in ("light_sleep", "deep_sleep", "rem_sleep")]
            if all(isinstance(s, int) for s in stages):
                seconds: int = sum(s for s in stages if isinstance(s, int))
                seconds += p.get("unrecognized_sleep_stage") or 0
                expected.setdefault(night.day, {})["sleep_seconds"] = seconds
        for recharge in client.fetch_nightly_recharge(token, FIRST, TEST_TODAY).records:
            rmssd = recharge.payload.get("heart_rate_variability_avg")
            expected.setdefault(recharge.day, {})["hrv_rmssd_ms"] = rmssd
        for day in client.fetch_activity(token, FIRST, TEST_TODAY).records:
            expected.setdefault(day.day, {})["steps"] = day.payload.get("steps")
    return expected


def test_import_builds_the_marts_publishes_and_is_idempotent(
    pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = _export(tmp_path)
    assert cli.main(["import", str(export), "--user", USER, "--no-progress"]) == 0
    first_summary = capsys.readouterr().out
    assert "activity: 60 records, 60 added or changed" in first_summary
    assert "has not connected AccessLink" in first_summary

    assert USER in pipeline.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)
    rows = pipeline.query(
        "SELECT day, sleep_seconds, hrv_rmssd_ms, ln_rmssd, steps FROM marts.daily_metrics WHERE user_id = ?",
        [USER],
    )
    metrics = {day: (sleep, hrv, ln, steps) for day, sleep, hrv, ln, steps in rows}
    assert [FIRST + timedelta(days=i) for i in range(DAYS)] == sorted(d for d in metrics if d >= FIRST)

    expected = _served_by_accesslink(pipeline)
    assert len(expected) >= 20  # AccessLink's ~28-day window: the overlap the comparison covers
    compared = {"sleep_seconds": 0, "hrv_rmssd_ms": 0, "steps": 0}
    for day, served in expected.items():
        sleep, hrv, ln, steps = metrics[day]
        if "sleep_seconds" in served:
            assert sleep == served["sleep_seconds"], day
            compared["sleep_seconds"] += 1
        if served.get("hrv_rmssd_ms"):
            assert hrv == pytest.approx(served["hrv_rmssd_ms"]), day
            assert ln == pytest.approx(math.log(served["hrv_rmssd_ms"])), day
            compared["hrv_rmssd_ms"] += 1
        if "steps" in served:
            assert steps == served["steps"], day
            compared["steps"] += 1
    assert min(compared.values()) >= 20, compared

    pointer = read_pointer(pipeline.settings.snapshots_dir)
    assert pointer is not None
    snapshot = duckdb.connect(str(pointer.path), read_only=True)
    try:
        published = snapshot.execute(
            "SELECT count(*) FROM marts.daily_metrics WHERE user_id = ? AND day >= ?", [USER, FIRST]
        ).fetchone()
    finally:
        snapshot.close()
    assert published == (DAYS,)
    kept = list((pipeline.settings.home_dir / "imported" / USER).iterdir())
    assert [p.name.endswith(export.name) for p in kept] == [True]

    before = _fingerprint(pipeline)
    assert cli.main(["import", str(export), "--user", USER, "--no-progress"]) == 0
    assert _fingerprint(pipeline) == before
    again = capsys.readouterr().out
    assert again.count(" 0 added or changed") == 5, again  # one line per raw stream
    assert "published serving snapshot generation 2" in again


def test_import_refuses_a_file_that_is_no_export(pipeline: Pipeline, tmp_path: Path) -> None:
    bogus = tmp_path / "export.zip"
    bogus.write_text("not a zip")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["import", str(bogus), "--user", USER, "--no-progress"])
    assert exit_info.value.code == 2
    assert not pipeline.settings.warehouse_path.exists()
    assert not (pipeline.settings.home_dir / "imported").exists()
    assert USER not in pipeline.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)
