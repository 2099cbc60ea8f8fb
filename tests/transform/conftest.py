"""Warehouses for the transform tests: one filled from the loopback simulator, built once per session."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import httpx
import pytest

from polar_pipeline.accesslink import AccessLinkClient, FetchResult, Record
from polar_pipeline.defs.transform.assets import TransformAssets, build_transform_assets
from polar_pipeline.orchestration.partitions import user_day_partitions
from polar_pipeline.settings import get_settings
from polar_pipeline.simulator import SimulatorConfig, create_app
from polar_pipeline.sqlmodels import load_models
from polar_pipeline.warehouse.raw_store import RawRecord, upsert_raw_records
from polar_pipeline.warehouse.schema import RAW_TABLES, ensure_raw_schema
from polar_pipeline.warehouse.writer import connect_writer
from tests.support.servers import serve_asgi

SIM_TODAY = date(2026, 3, 1)
SIM_HISTORY_DAYS = 420
SIM_USERS = 4  # one of each persona: endurance athlete, casual exerciser, irregular sleeper, no workouts
FETCHED_AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


@dataclass(frozen=True)
class SimWarehouse:
    """A warehouse whose raw.* holds ~14 months of simulator data, and the simulator's ground truth."""

    path: Path
    users: tuple[str, ...]
    first_day: date
    last_day: date
    truth: dict[str, dict[str, Any]]

    def copy_to(self, directory: Path) -> Path:
        target = directory / "warehouse.duckdb"
        shutil.copy(self.path, target)
        return target

    def events(self, user: str, kind: str) -> list[tuple[date, date]]:
        return [
            (date.fromisoformat(event["start"]), date.fromisoformat(event["end"]))
            for event in self.truth[user]["events"]
            if event["kind"] == kind and date.fromisoformat(event["end"]) <= self.last_day
        ]


def _store(con: duckdb.DuckDBPyConnection, stream: str, user: str, result: FetchResult[Any]) -> None:
    assert not result.rejected, (
        f"simulator without faults sent rejected {stream} records: {result.rejected[:2]}"
    )
    records: list[Record] = list(result.records)
    upsert_raw_records(
        con,
        RAW_TABLES[stream],
        user,
        [RawRecord(r.key, r.day, json.dumps(r.payload, ensure_ascii=False)) for r in records],
        source="simulator",
        fetched_at=FETCHED_AT,
    )


def collect_simulator_history(
    path: Path, *, seed: int, users: int, today: date, history_days: int
) -> SimWarehouse:
    """Register every simulated user on the first day, then walk the clock forward 28 days at a time.

    AccessLink lists serve only the last 28 days (exercises: 30 days after registration), so the clock is
    moved and each window fetched with the sync client, exactly as a long-running deployment would.
    """
    app = create_app(SimulatorConfig(seed=seed, users=users, today=today, history_days=history_days))
    con = connect_writer(path)
    ensure_raw_schema(con)
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=60) as admin:
        sim_users = admin.get("/sim/users").json()
        start = date.fromisoformat(sim_users[0]["history_start"])
        admin.post("/sim/clock", json={"today": start.isoformat()}).raise_for_status()

        def client() -> AccessLinkClient:
            # A fresh client per clock step: a client remembers the server's date from its last answer.
            return AccessLinkClient(
                url, token_url=f"{url}/v2/oauth2/token", client_id="sim-client", client_secret="sim-secret"
            )

        with client() as registrar:
            for user in sim_users:
                registrar.register_user(user["access_token"], f"member-{user['x_user_id']}")
        clock = start
        while clock < today:
            clock = min(clock + timedelta(days=28), today)
            admin.post("/sim/clock", json={"today": clock.isoformat()}).raise_for_status()
            first = clock - timedelta(days=27)
            with client() as api:
                for user in sim_users:
                    token, user_id = user["access_token"], str(user["x_user_id"])
                    _store(con, "sleep", user_id, api.fetch_sleep(token, first, clock))
                    _store(con, "nightly_recharge", user_id, api.fetch_nightly_recharge(token, first, clock))
                    _store(con, "activity", user_id, api.fetch_activity(token, first, clock))
                    _store(con, "exercises", user_id, api.fetch_exercises(token, first, clock, samples=False))
                    _store(
                        con, "continuous_heart_rate", user_id, api.fetch_continuous_hr(token, first, clock)
                    )
                    _store(con, "cardio_load", user_id, api.fetch_cardio_load(token, first, clock))
        truth = {
            str(user["x_user_id"]): admin.get(f"/sim/ground-truth/{user['x_user_id']}").json()
            for user in sim_users
        }
    last_day = con.execute("SELECT max(day) FROM raw.activity").fetchone()
    con.close()
    assert last_day is not None
    return SimWarehouse(
        path=path,
        users=tuple(str(user["x_user_id"]) for user in sim_users),
        first_day=start,
        last_day=last_day[0],
        truth=truth,
    )


def transform_assets_for(sql_dir: Path) -> TransformAssets:
    """The transform assets Dagster would build for the models in ``sql_dir``."""
    return build_transform_assets(load_models(sql_dir), user_day_partitions(get_settings()))


@pytest.fixture
def read_only() -> Iterator[Any]:
    """Open warehouses read-only; every connection is closed after the test."""
    opened: list[duckdb.DuckDBPyConnection] = []

    def open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(path), read_only=True)
        opened.append(con)
        return con

    yield open_read_only
    for con in opened:
        con.close()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    shm = Path("/dev/shm")  # Dagster books two SQLite commits per asset partition: tmpfs keeps tests fast
    with (
        tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as home,
        dg.instance_for_test(temp_dir=home) as test_instance,
    ):
        yield test_instance
