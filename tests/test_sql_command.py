"""``polar-flow sql``: read-only SQL on the served snapshot, every output format, the interactive loop."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from polar_pipeline.sql_shell import open_snapshot, run_statement, statements
from tests.support.served import Served

QUERY = (
    "SELECT user_id, count(*) AS days, sum(steps) AS steps FROM marts.daily_metrics GROUP BY ALL ORDER BY 1"
)


def _cli(served: Served, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = os.environ | {"POLAR_HOME": str(served.settings.home_dir)}
    command = [sys.executable, "-m", "polar_pipeline.cli", "sql", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, env=env, timeout=120)


def test_csv_and_json_answer_what_the_snapshot_holds(served: Served) -> None:
    expected = served.snapshot_query(QUERY)
    assert len(expected) == len(served.users)

    as_csv = _cli(served, QUERY, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0] == ["user_id", "days", "steps"]
    assert [(r[0], int(r[1]), int(r[2])) for r in rows[1:]] == expected

    as_json = _cli(served, QUERY, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    records = json.loads(as_json.stdout)
    assert [(r["user_id"], r["days"], r["steps"]) for r in records] == expected

    as_table = _cli(served, QUERY)
    assert as_table.returncode == 0 and f"({len(expected)} rows)" in as_table.stdout
    assert all(user in as_table.stdout for user, _, _ in expected)


def test_parquet_is_written_to_the_given_file(served: Served, tmp_path: Path) -> None:
    target = tmp_path / "days.parquet"
    missing = _cli(served, QUERY, "--format", "parquet")
    assert missing.returncode == 1 and "--output" in missing.stderr
    written = _cli(served, QUERY, "--format", "parquet", "--output", str(target))
    assert written.returncode == 0, written.stderr
    assert duckdb.sql(f"SELECT * FROM read_parquet('{target}') ORDER BY 1").fetchall() == [
        tuple(row) for row in served.snapshot_query(QUERY)
    ]


def test_writes_are_refused_and_change_nothing(served: Served) -> None:
    before = served.snapshot_query("SELECT count(*) FROM marts.daily_metrics")
    refused = _cli(served, "DELETE FROM marts.daily_metrics")
    assert refused.returncode == 1 and "read-only" in refused.stderr
    assert served.snapshot_query("SELECT count(*) FROM marts.daily_metrics") == before


def test_interactive_reads_statements_until_quit_and_reports_bad_ones(served: Served) -> None:
    session = _cli(
        served, stdin="SELECT 41 + 1\n  AS answer;\nSELECT nope;\nSELECT 'after' AS still;\n.quit\n"
    )
    assert "answer" in session.stdout and "42" in session.stdout
    assert "after" in session.stdout  # the loop went on after the failing statement
    assert "nope" in session.stderr and session.returncode == 1


def test_statements_split_on_semicolons_at_line_ends() -> None:
    lines = iter(["SELECT 1;", "SELECT", "  2;", "SELECT 3"])
    assert list(statements(lines)) == ["SELECT 1;", "SELECT\n  2;", "SELECT 3"]


def test_nothing_published_says_what_to_do(tmp_path: Path) -> None:
    try:
        with open_snapshot(tmp_path / "serving"):
            raise AssertionError("opened a snapshot that was never published")
    except RuntimeError as exc:
        assert "polar-flow sync" in str(exc)


def test_a_null_is_an_empty_csv_cell_and_zero_stays_zero(served: Served) -> None:
    with open_snapshot(served.settings.snapshots_dir) as con:
        out = io.StringIO()
        run_statement(con, "SELECT 0 AS zero, NULL AS nothing", out, "csv")
    assert out.getvalue().splitlines() == ["zero,nothing", "0,"]
