"""The API over a real published snapshot, served by uvicorn on loopback, and the read layer it calls."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx

from polar_api.app import create_app
from polar_api.read.sleep import SleepNight, sleep_nights
from polar_api.read.users import user_exists
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.snapshot import publish_snapshot, read_pointer
from tests.conftest import TEST_TODAY, Pipeline
from tests.support.served import Served, admin_headers
from tests.support.servers import serve_asgi

REPO_ROOT = Path(__file__).resolve().parents[2]

# The route's query before the read layer existed, copied here verbatim as an independent oracle: it reads the
# staging views and parses the heart-rate samples out of the payload on every call.
OLD_STAGING_SLEEP_QUERY = """
SELECT s.day, s.sleep_score,
    (s.light_sleep_seconds + s.deep_sleep_seconds + s.rem_sleep_seconds) / 3600.0,
    s.light_sleep_seconds / 3600.0, s.deep_sleep_seconds / 3600.0, s.rem_sleep_seconds / 3600.0,
    r.hrv_rmssd_ms,
    list_avg(list_filter(map_values(TRY_CAST(s.raw_payload::JSON->'heart_rate_samples' AS MAP(VARCHAR, DOUBLE))), lambda bpm: bpm > 0)),
    r.breathing_rate, NULL
FROM staging.sleep AS s
LEFT JOIN staging.nightly_recharge AS r ON r.user_id = s.user_id AND r.day = s.day AND r.reject_reason IS NULL
WHERE s.user_id = ? AND s.day >= ? AND s.reject_reason IS NULL
ORDER BY s.day DESC
"""  # noqa: E501

NIGHT_FIELDS = [
    "date", "sleep_score", "total_sleep_hours", "light_sleep_hours", "deep_sleep_hours",
    "rem_sleep_hours", "hrv_avg", "heart_rate_avg", "breathing_rate_avg", "skin_temperature_avg",
]  # fmt: skip


def test_health_is_503_before_the_first_publish(pipeline: Pipeline) -> None:
    with serve_asgi(create_app(pipeline.settings)) as api:
        response = httpx.get(f"{api}/health", timeout=10)
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_sleep_route_returns_last_n_nights_with_upstream_field_names(served: Served) -> None:
    pipeline, users = served, served.users
    headers = admin_headers(pipeline.settings)
    with serve_asgi(create_app(pipeline.settings)) as api:
        health = httpx.get(f"{api}/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["snapshot"]["generation"] == 1
        assert 0 <= health.json()["snapshot"]["age_seconds"] < 600

        nights = httpx.get(
            f"{api}/api/v1/users/{users[0]}/sleep", params={"days": 30}, headers=headers, timeout=10
        ).json()
        stored = pipeline.warehouse_query(
            "SELECT count(*) FROM raw.sleep WHERE user_id = ? AND day >= ?",
            [users[0], TEST_TODAY - timedelta(days=30)],
        )[0][0]
        assert len(nights) == stored and 24 <= stored <= 31  # a few nights are planted as not worn
        assert [n["date"] for n in nights] == sorted((n["date"] for n in nights), reverse=True)
        night = nights[0]
        assert set(night) == {
            "date", "sleep_score", "total_sleep_hours", "light_sleep_hours", "deep_sleep_hours",
            "rem_sleep_hours", "hrv_avg", "heart_rate_avg", "breathing_rate_avg", "skin_temperature_avg",
        }  # fmt: skip
        payload = pipeline.warehouse_query(
            "SELECT payload FROM raw.sleep WHERE user_id = ? AND day = ?", [users[0], night["date"]]
        )[0][0]
        raw = json.loads(payload)
        assert (
            night["total_sleep_hours"] == (raw["light_sleep"] + raw["deep_sleep"] + raw["rem_sleep"]) / 3600
        )
        assert night["sleep_score"] == raw["sleep_score"]

        other = httpx.get(
            f"{api}/api/v1/users/{users[1]}/sleep", params={"days": 7}, headers=headers, timeout=10
        ).json()
        assert 1 <= len(other) <= 8 and all(n["date"] >= str(TEST_TODAY - timedelta(days=7)) for n in other)

        assert httpx.get(f"{api}/api/v1/users/nobody/sleep", headers=headers, timeout=10).status_code == 404
        bad_days = httpx.get(
            f"{api}/api/v1/users/{users[0]}/sleep", params={"days": 0}, headers=headers, timeout=10
        )
        assert bad_days.status_code == 422 and "days" in bad_days.text
        assert httpx.get(f"{api}/api/v1/users/a%7Cb/sleep", headers=headers, timeout=10).status_code == 422


def _old_query_nights(snapshot: duckdb.DuckDBPyConnection, user_id: str, since: date) -> list[dict[str, Any]]:
    """The old query's rows as the route's JSON objects (dates as ISO text)."""
    rows = snapshot.execute(OLD_STAGING_SLEEP_QUERY, [user_id, since]).fetchall()
    return [
        {
            field: value.isoformat() if isinstance(value, date) else value
            for field, value in zip(NIGHT_FIELDS, row, strict=True)
        }
        for row in rows
    ]


def _marts_only_copy(snapshot_path: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory database holding the snapshot's ``marts`` tables and nothing else."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{snapshot_path.as_posix()}' AS snap (READ_ONLY)")
    con.execute("CREATE SCHEMA marts")
    tables = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'snap' AND schema_name = 'marts'"
    ).fetchall()
    for (table,) in tables:
        con.execute(f'CREATE TABLE marts."{table}" AS FROM snap.marts."{table}"')
    con.execute("DETACH snap")
    return con


def test_sleep_route_answers_what_the_old_staging_query_answered(served: Served) -> None:
    pipeline, users = served, served.users
    info = read_pointer(pipeline.settings.snapshots_dir)
    assert info is not None
    # The old query reads staging views over raw payloads, which live in the warehouse (not the snapshot).
    snapshot = duckdb.connect(str(pipeline.settings.warehouse_path), read_only=True)
    marts_only = _marts_only_copy(info.path)
    compared: list[dict[str, Any]] = []
    try:
        headers = admin_headers(pipeline.settings)
        with serve_asgi(create_app(pipeline.settings)) as api:
            for user in users:
                for days in (7, 30, 365):
                    response = httpx.get(
                        f"{api}/api/v1/users/{user}/sleep", params={"days": days}, headers=headers, timeout=10
                    )
                    assert response.status_code == 200, response.text
                    nights = response.json()
                    # The route's "today" is POLAR_TODAY, the test calendar: no midnight race.
                    since = TEST_TODAY - timedelta(days=days)
                    assert nights == _old_query_nights(snapshot, user, since), f"user {user}, days={days}"
                    read = [night.model_dump(mode="json") for night in sleep_nights(marts_only, user, since)]
                    assert read == nights, f"marts-only copy, user {user}, days={days}"
                    compared += nights
    finally:
        snapshot.close()
        marts_only.close()
    # Not vacuous: nights were compared, and the JSON-derived heart rate and the recharge fields had values.
    assert len(compared) >= len(users) * 50
    for field in ("sleep_score", "heart_rate_avg", "hrv_avg", "breathing_rate_avg"):
        assert any(night[field] is not None for night in compared), field
    assert all(night["skin_temperature_avg"] is None for night in compared)


DAILY_METRICS_DDL = """
CREATE TABLE marts.daily_metrics (
    user_id VARCHAR, day DATE, sleep_start TIMESTAMPTZ, sleep_end TIMESTAMPTZ,
    light_sleep_seconds BIGINT, deep_sleep_seconds BIGINT, rem_sleep_seconds BIGINT, sleep_score INTEGER,
    sleep_hr_avg_bpm DOUBLE, hrv_rmssd_ms DOUBLE, breathing_rate DOUBLE, steps BIGINT
)
"""


def _hand_built_marts(today: date) -> duckdb.DuckDBPyConnection:
    """A database with ``marts.daily_metrics`` only (the columns the read layer uses): no staging, no raw.

    User 1001 has nights today, 3 days ago (no Nightly Recharge), 7 and 8 days ago, and a day without a night
    yesterday; user 1002 has one day 30 days ago, without a night.
    """
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute(DAILY_METRICS_DDL)

    def night(user: str, days_ago: int, recharge: bool = True) -> tuple[Any, ...]:
        day = today - timedelta(days=days_ago)
        start = datetime.combine(day - timedelta(days=1), time(23), tzinfo=UTC)
        hrv, breathing = (48.0, 14.5) if recharge else (None, None)
        return (
            user,
            day,
            start,
            start + timedelta(hours=8),
            14400,
            5400,
            5401,
            81,
            52.25,
            hrv,
            breathing,
            9000,
        )

    def day_without_night(user: str, days_ago: int) -> tuple[Any, ...]:
        return (user, today - timedelta(days=days_ago), *[None] * 9, 9000)

    rows = [
        night("1001", 0),
        day_without_night("1001", 1),
        night("1001", 3, recharge=False),
        night("1001", 7),
        night("1001", 8),
        day_without_night("1002", 30),
    ]
    con.executemany("INSERT INTO marts.daily_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return con


def _relations(node: Any) -> Iterator[tuple[str, str]]:
    """Every (schema, table) a parsed statement (``json_serialize_sql``) names in a FROM clause."""
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE":
            yield str(node.get("schema_name", "")), str(node.get("table_name", ""))
        for value in node.values():
            yield from _relations(value)
    elif isinstance(node, list):
        for value in node:
            yield from _relations(value)


def test_the_sleep_query_reads_marts_only() -> None:
    today = TEST_TODAY
    con = _hand_built_marts(today)
    try:
        schemas = {
            row[0] for row in con.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()
        }
        assert schemas == {"marts"}  # so a read of staging.* or raw.* fails with a catalog error below
        con.execute("CALL enable_logging('QueryLog')")
        cursor = con.cursor()
        nights = sleep_nights(cursor, "1001", today - timedelta(days=7))
        known_without_nights = sleep_nights(cursor, "1002", today - timedelta(days=7))
        known, unknown = user_exists(cursor, "1002"), user_exists(cursor, "nobody")
        cursor.close()
        con.execute("CALL disable_logging()")
        logged = [
            str(row[0])
            for row in con.execute("SELECT message FROM duckdb_logs WHERE type = 'QueryLog'").fetchall()
            if not str(row[0]).lstrip().upper().startswith("CALL ")
        ]

        assert [n.date for n in nights] == [today - timedelta(days=d) for d in (0, 3, 7)]
        assert nights[0] == SleepNight(
            date=today, sleep_score=81, total_sleep_hours=25201 / 3600, light_sleep_hours=4.0,
            deep_sleep_hours=1.5, rem_sleep_hours=5401 / 3600, hrv_avg=48.0, heart_rate_avg=52.25,
            breathing_rate_avg=14.5, skin_temperature_avg=None,
        )  # fmt: skip
        assert nights[1].hrv_avg is None and nights[1].breathing_rate_avg is None
        assert nights[1].heart_rate_avg == 52.25
        assert known_without_nights == [] and known and not unknown

        assert len(logged) >= 4, logged  # one statement per call at least: the checks below are not vacuous
        for sql in logged:
            row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
            assert row is not None
            parsed = json.loads(row[0])
            assert not parsed["error"], (sql, parsed)
            relations = set(_relations(parsed["statements"]))
            assert relations and all(schema == "marts" for schema, _ in relations), (sql, relations)
            assert not re.search(r"json|->|payload|staging\.|raw\.", sql, re.IGNORECASE), sql
    finally:
        con.close()


def test_sleep_route_tells_an_unknown_user_from_a_known_user_without_nights(tmp_path: Path) -> None:
    today = TEST_TODAY
    settings = Settings(home=tmp_path / "home")
    con = _hand_built_marts(today)
    try:
        publish_snapshot(con, settings.snapshots_dir)
    finally:
        con.close()
    headers = admin_headers(settings)
    with serve_asgi(create_app(settings)) as api:
        week = httpx.get(f"{api}/api/v1/users/1001/sleep", headers=headers, timeout=10)
        assert week.status_code == 200
        assert [n["date"] for n in week.json()] == [str(today - timedelta(days=d)) for d in (0, 3, 7)]
        assert week.json()[1]["hrv_avg"] is None and week.json()[1]["heart_rate_avg"] == 52.25

        for days in (7, 365):
            empty = httpx.get(
                f"{api}/api/v1/users/1002/sleep", params={"days": days}, headers=headers, timeout=10
            )
            assert (empty.status_code, empty.json()) == (200, [])

        unknown = httpx.get(f"{api}/api/v1/users/nobody/sleep", headers=headers, timeout=10)
        assert unknown.status_code == 404
        assert unknown.json() == {"detail": "no data for user nobody in the serving snapshot"}


def test_importing_the_api_loads_neither_dagster_nor_the_warehouse_writer() -> None:
    code = (
        "import json, sys\n"
        "import polar_api.app\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'dagster_duckdb')"
        " or m == 'polar_pipeline.warehouse.writer')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    offending = [m for m in loaded if m in ("dagster", "polar_pipeline.warehouse.writer")]
    assert not offending, f"importing polar_api.app loaded {offending}; all related modules loaded: {loaded}"
