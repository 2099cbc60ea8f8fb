"""The simulator-backed warehouses several test folders read (transform, analytics): built once per session.

Registered for the whole suite from ``tests/conftest.py`` (``pytest_plugins``), so each is one fixture with
one instance, not a copy per folder. How they are built lives in ``tests/transform/conftest.py``.
"""

from __future__ import annotations

import pytest

from polar_pipeline.sqlmodels import ModelGraph, load_models, run_models
from polar_pipeline.warehouse.writer import connect_writer
from tests.transform.conftest import (
    SIM_HISTORY_DAYS,
    SIM_TODAY,
    SIM_USERS,
    SimWarehouse,
    collect_simulator_history,
)


@pytest.fixture(scope="session")
def graph() -> ModelGraph:
    return load_models()


@pytest.fixture(scope="session")
def sim_raw(tmp_path_factory: pytest.TempPathFactory) -> SimWarehouse:
    """Raw simulator data only (copy it before writing)."""
    path = tmp_path_factory.mktemp("sim-raw") / "warehouse.duckdb"
    return collect_simulator_history(
        path, seed=7, users=SIM_USERS, today=SIM_TODAY, history_days=SIM_HISTORY_DAYS
    )


@pytest.fixture(scope="session")
def sim_marts(
    sim_raw: SimWarehouse, graph: ModelGraph, tmp_path_factory: pytest.TempPathFactory
) -> SimWarehouse:
    """The simulator warehouse with every mart built over the whole history for all users in one slice."""
    path = sim_raw.copy_to(tmp_path_factory.mktemp("sim-marts"))
    con = connect_writer(path)
    try:
        run_models(con, graph, sim_raw.users, sim_raw.first_day, sim_raw.last_day)
    finally:
        con.close()
    return SimWarehouse(path, sim_raw.users, sim_raw.first_day, sim_raw.last_day, sim_raw.truth)
