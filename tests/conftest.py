"""A real loopback simulator, a private POLAR_HOME and DAGSTER_HOME, and helpers to read the warehouse."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import httpx
import pytest

from polar_pipeline.operations import add_user
from polar_pipeline.settings import Settings, simulator_environment
from polar_pipeline.simulator import SimulatorConfig, create_app
from tests.support.servers import serve_asgi

pytest_plugins = ["tests.support.simulated", "tests.support.served"]

RAW_TABLE_NAMES = (
    "sleep",
    "nightly_recharge",
    "activity",
    "exercises",
    "continuous_heart_rate",
    "cardio_load",
    "quarantine",
)
TEST_HISTORY_START = "2024-01-01"
"""The day axis of every test instance: before all simulated data the tests use (2025 on), fixed."""
TEST_TODAY = date(2026, 3, 1)
"""The calendar every test lives on (``POLAR_TODAY``): inputs never change with the real date."""


def pytest_configure(config: pytest.Config) -> None:
    """Never touch a real ~/.polar-flow: a private POLAR_HOME, a fixed history start and a fixed day."""
    home = Path(tempfile.mkdtemp(prefix="polar-test-home-"))
    os.environ["POLAR_HOME"] = str(home)
    os.environ["POLAR_HISTORY_START"] = TEST_HISTORY_START
    os.environ["POLAR_TODAY"] = TEST_TODAY.isoformat()
    os.environ.pop("DAGSTER_HOME", None)


@dataclass
class Pipeline:
    """Everything a pipeline test needs: settings, a Dagster instance, the simulator and its users."""

    settings: Settings
    instance: dg.DagsterInstance
    sim_url: str
    users: list[dict[str, Any]]
    env: dict[str, str]

    def sim(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.sim_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def sim_today(self) -> date:
        return date.fromisoformat(self.sim("GET", "/sim/clock")["today"])

    def add_users(self, count: int) -> list[str]:
        ids = []
        for sim_user in self.users[:count]:
            user_id = str(sim_user["x_user_id"])
            add_user(self.settings, user_id, sim_user["access_token"], instance=self.instance)
            ids.append(user_id)
        return ids

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.settings.warehouse_path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def checksums(self) -> dict[str, str]:
        """A digest of every raw table's full contents, bookkeeping columns included."""
        digests = {}
        for name in RAW_TABLE_NAMES:
            rows = self.query(f"SELECT * FROM raw.{name} ORDER BY ALL")
            digests[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return digests


@contextmanager
def open_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    """A simulator on loopback, a private POLAR_HOME and DAGSTER_HOME, and the environment set to them."""
    # A frozen simulated clock (noon on the test day): a moving one changes today's activity between runs.
    app = create_app(SimulatorConfig(seed=11, users=3, today=TEST_TODAY))
    with serve_asgi(app) as sim_url:
        home = tmp_path / "home"
        shm = Path("/dev/shm")
        dagster_home = (shm if shm.is_dir() else tmp_path) / f"dagster-{os.getpid()}-{tmp_path.name}"
        env = simulator_environment(sim_url, home, dagster_home)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        from polar_pipeline.orchestration.home import prepare_dagster_home

        prepare_dagster_home(settings)
        instance = dg.DagsterInstance.get()
        users = httpx.get(f"{sim_url}/sim/users", timeout=10).json()
        try:
            yield Pipeline(settings=settings, instance=instance, sim_url=sim_url, users=users, env=env)
        finally:
            instance.dispose()
            shutil.rmtree(dagster_home, ignore_errors=True)


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with open_pipeline(tmp_path, monkeypatch) as opened:
        yield opened
