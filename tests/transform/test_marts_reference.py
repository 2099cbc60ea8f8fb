"""Every mart column recomputed independently (numpy/scipy, from the raw JSON) and compared to 1e-9."""

from __future__ import annotations

from typing import Any

import pytest

from tests.transform import reference
from tests.transform.conftest import SimWarehouse

MARTS = (
    "daily_metrics",
    "rolling_metrics",
    "baselines",
    "anomalies",
    "hrv_status",
    "training_load",
    "sleep_debt",
)


@pytest.fixture(scope="module")
def expected(sim_marts: SimWarehouse) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(str(sim_marts.path), read_only=True)
    try:
        return reference.all_marts(reference.load_raw(con))
    finally:
        con.close()


@pytest.mark.parametrize("mart", MARTS)
def test_simulator_marts_match_the_numpy_reference(
    mart: str, sim_marts: SimWarehouse, expected: dict[str, Any], read_only: Any
) -> None:
    keys, rows = expected[mart]
    assert rows, f"the reference produced no {mart} rows"
    compared = reference.assert_table_matches(read_only(sim_marts.path), mart, keys, rows)
    assert compared >= len(rows)
