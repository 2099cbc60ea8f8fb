"""Refactoring guard: every mart's rows equal what the code before the restructuring produced.

``mart_checksums.json`` was recorded with commit 3156895 (before the SQL was reorganised into macros and an
ephemeral model, and the SQL runner moved to ``polar_pipeline.sqlmodels``) on the session's simulator
warehouse (seed 7, 4 personas, 420 days to 2026-03-01; ``sim_marts``). It lists the columns each mart had
then; a mart may gain columns without tripping the guard, but any change to existing rows does. When a
mart changes on purpose, re-record it and say why in the commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.transform.checksums import table_checksum
from tests.transform.conftest import SimWarehouse

RECORDED = json.loads((Path(__file__).parent / "mart_checksums.json").read_text())


@pytest.mark.parametrize("mart", sorted(RECORDED))
def test_mart_rows_are_unchanged_by_the_restructuring(mart: str, sim_marts: SimWarehouse) -> None:
    recorded = RECORDED[mart]
    con = duckdb.connect(str(sim_marts.path), read_only=True)
    try:
        rows, digest = table_checksum(con, f"marts.{mart}", recorded["columns"])
    finally:
        con.close()
    assert rows == recorded["rows"]
    assert digest == recorded["sha256"], f"marts.{mart} rows differ from the recorded ones"
