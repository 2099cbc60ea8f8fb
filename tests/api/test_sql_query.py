"""The read-only SQL engine behind the MCP tool ``query_sql``, on the session's served snapshot.

Answers are compared with the same question read straight from the snapshot file; a user-scoped caller's
answers with that query restricted to the user by hand. Every way out of "one SELECT over the public
tables" is tried, and the lock-down is also tried on its own, with the pre-execution check switched off.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from polar_api.read import sql_query
from polar_api.read.sql_query import (
    INTERNAL_CATALOG,
    QueryFailed,
    QueryRefused,
    QueryTimeout,
    run_query,
)
from polar_pipeline.warehouse.snapshot import read_pointer
from tests.support.served import Served


def snapshot_path(served: Served) -> Path:
    info = read_pointer(served.settings.snapshots_dir)
    assert info is not None
    return info.path


def public_relations(served: Served) -> list[str]:
    """Every relation the snapshot serves, read from its own catalog."""
    rows = served.snapshot_query(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_schema IN ('marts', 'analytics', 'samples') "
        "OR table_schema || '.' || table_name IN ('raw.quarantine', 'control.user_time_zones') ORDER BY 1"
    )
    return [str(name) for (name,) in rows]


def test_an_admin_select_returns_what_the_snapshot_holds(served: Served) -> None:
    question = (
        "SELECT user_id, count(*) AS days, sum(steps) AS steps, round(avg(sleep_score), 6) AS sleep_score "
        "FROM marts.daily_metrics GROUP BY user_id ORDER BY user_id"
    )
    result = run_query(snapshot_path(served), question, user_id=None)

    direct = served.snapshot_query(question)
    assert result.columns == ["user_id", "days", "steps", "sleep_score"]
    assert result.rows == [list(row) for row in direct]
    assert sorted(row[0] for row in result.rows) == sorted(served.users)
    assert (result.row_count, result.truncated) == (len(direct), False)
    info = read_pointer(served.settings.snapshots_dir)
    assert info is not None and result.generation == info.generation
    assert result.elapsed_ms > 0


def test_a_user_sees_only_its_own_rows_in_every_relation(served: Served) -> None:
    """For each public relation: the user's row count, and no row of anyone else, whatever the WHERE."""
    user = served.users[0]
    path = snapshot_path(served)
    relations = public_relations(served)
    assert len(relations) >= 20 and "samples.exercise_samples" in relations
    shared = []
    for relation in relations:
        result = run_query(
            path,
            f"SELECT count(*) AS mine, count(*) FILTER (WHERE user_id <> '{user}') AS others FROM {relation}",
            user_id=user,
            samples_dir=served.settings.samples_dir,
        )
        ((mine, everyone),) = served.snapshot_query(
            f"SELECT count(*) FILTER (WHERE user_id = ?), count(*) FROM {relation}", [user]
        )
        assert result.rows == [[mine, 0]], relation
        if everyone > mine > 0:
            shared.append(relation)
    assert {"marts.daily_metrics", "analytics.risk", "samples.exercise_samples"} <= set(shared)


@pytest.mark.parametrize(
    "question",
    [
        "SELECT user_id, day FROM marts.daily_metrics WHERE user_id = '{other}'",
        "SELECT user_id, day FROM marts.daily_metrics WHERE user_id <> '{user}' OR true",
        "WITH everyone AS (SELECT * FROM marts.daily_metrics) SELECT user_id, day FROM everyone "
        "WHERE user_id = '{other}'",
        "SELECT d.user_id, d.day FROM marts.daily_metrics AS d JOIN analytics.risk AS r USING (user_id, day) "
        "WHERE d.user_id = '{other}' UNION ALL SELECT user_id, day FROM analytics.patterns "
        "WHERE user_id = '{other}'",
        "SELECT user_id, day FROM (SELECT * FROM marts.sleep_debt) WHERE user_id IN "
        "(SELECT DISTINCT user_id FROM marts.baselines WHERE user_id = '{other}')",
    ],
)
def test_no_query_reaches_another_users_rows(served: Served, question: str) -> None:
    user, other = served.users[0], served.users[1]
    sql = question.format(user=user, other=other)
    as_admin = run_query(snapshot_path(served), sql, user_id=None, max_rows=10_000)
    as_user = run_query(snapshot_path(served), sql, user_id=user, max_rows=10_000)
    assert {row[0] for row in as_admin.rows} - {user}, "the admin sees someone else's rows here"
    assert {row[0] for row in as_user.rows} <= {user}


def test_without_a_where_a_user_gets_exactly_its_rows(served: Served) -> None:
    user = served.users[2]
    result = run_query(
        snapshot_path(served), "SELECT user_id, day FROM marts.daily_metrics ORDER BY day", user_id=user
    )
    direct = served.snapshot_query(
        "SELECT user_id, day::VARCHAR FROM marts.daily_metrics WHERE user_id = ? ORDER BY day", [user]
    )
    assert result.rows == [list(row) for row in direct]


ESCAPES: list[tuple[str, str]] = [
    ("COPY (SELECT 1) TO '{tmp}/copied.csv'", "COPY statements are refused"),
    ("COPY marts.daily_metrics TO '{tmp}/copied.parquet' (FORMAT parquet)", "COPY statements are refused"),
    ("SELECT * FROM read_csv('/etc/passwd')", "table function read_csv"),
    ("SELECT * FROM read_text('/etc/passwd')", "table function read_text"),
    ("SELECT * FROM '/etc/passwd'", "'/etc/passwd' is not a table here"),
    ("SELECT * FROM '{tmp}/*.parquet'", "is not a table here"),
    ("ATTACH '{tmp}/attached.db' AS other", "ATTACH statements are refused"),
    ("INSTALL httpfs", "INSTALL statements are refused"),
    ("LOAD httpfs", "LOAD statements are refused"),
    ("SET threads = 1", "SET statements are refused"),
    ("SET enable_external_access = true", "SET statements are refused"),
    ("PRAGMA database_list", "PRAGMA statements are refused"),
    ("CALL pragma_version()", "CALL statements are refused"),
    ("EXPLAIN SELECT 1", "EXPLAIN statements are refused"),
    ("CREATE TABLE copied AS SELECT * FROM marts.daily_metrics", "CREATE statements are refused"),
    ("INSERT INTO marts.daily_metrics (user_id) VALUES ('x')", "INSERT statements are refused"),
    ("DELETE FROM marts.daily_metrics", "DELETE statements are refused"),
    ("SELECT 1; SELECT 2", "2 statements were given"),
    ("SELECT 1; DROP TABLE marts.daily_metrics", "2 statements were given"),
    ("SELECT getenv('HOME')", "function getenv"),
    ("SELECT current_setting('allowed_directories')", "function current_setting"),
    (f"SELECT count(*) FROM {INTERNAL_CATALOG}.marts.daily_metrics", "internal catalog"),
    ("SELECT count(*) FROM memory.marts.daily_metrics", "without a catalog"),
    ("SELECT * FROM information_schema.tables", "information_schema.tables is not a public table"),
    ("SELECT * FROM duckdb_settings()", "table function duckdb_settings"),
    ("SELECT * FROM duckdb_databases()", "table function duckdb_databases"),
    ("SELECT * FROM pg_catalog.pg_class", "not a public table"),
    ("SELECT * FROM pg_class", "'pg_class' is not a table here"),
    ("SELECT * FROM (WITH pg_class AS (SELECT 1) SELECT 1), pg_class", "name of a system catalog view"),
    ("SHOW TABLES", "SHOW … is refused"),
    ("SHOW ALL TABLES", "SHOW … is refused"),
    ("SELECT * FROM query_table('marts.daily_metrics')", "table function query_table"),
    ("SELECT * FROM query('SELECT 1')", "table function query"),
    ("SELECT * FROM glob('/*')", "table function glob"),
    ("SELECT * FROM raw.sleep", "raw.sleep is not a public table"),
    ("SELECT system.main.abs(-1)", "call functions unqualified"),
]


@pytest.mark.parametrize(("question", "expected"), ESCAPES, ids=[sql for sql, _ in ESCAPES])
def test_every_way_out_is_refused_before_it_runs(
    served: Served, tmp_path: Path, question: str, expected: str
) -> None:
    (tmp_path / "store.parquet").write_bytes(b"")  # something a path glob could find
    before = sorted(path.name for path in served.settings.snapshots_dir.iterdir())
    with pytest.raises(QueryRefused) as refused:
        run_query(
            snapshot_path(served),
            question.format(tmp=tmp_path.as_posix()),
            user_id=served.users[0],
            samples_dir=served.settings.samples_dir,
        )
    assert type(refused.value) is QueryRefused, "refused by the check, not by DuckDB"
    assert expected in str(refused.value)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["store.parquet"]
    assert sorted(path.name for path in served.settings.snapshots_dir.iterdir()) == before


@pytest.mark.parametrize(
    ("question", "refusal"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
        ("SELECT * FROM read_text('{tmp}/secret.txt')", "file system operations are disabled"),
        ("COPY (SELECT 1) TO '{tmp}/copied.csv'", "file system operations are disabled"),
        ("ATTACH '{tmp}/attached.db' AS other", "file system operations are disabled"),
        ("SET threads = 1", "the configuration has been locked"),
        ("SET enable_external_access = true", "the configuration has been locked"),
        ("LOAD httpfs", "disabled"),
        ("SELECT getenv('HOME')", "getenv does not exist"),
    ],
)
def test_the_lock_down_holds_even_without_the_check(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, question: str, refusal: str
) -> None:
    """Defence in depth: with the statement and tree checks switched off, DuckDB itself says no."""
    (tmp_path / "secret.txt").write_text("secret")
    monkeypatch.setattr(sql_query, "_single_select", lambda con, sql: sql)
    monkeypatch.setattr(sql_query, "_parse_tree", lambda con, statement: [])
    monkeypatch.setattr(sql_query, "check_query_tree", lambda *args: None)
    with pytest.raises(QueryFailed) as failed:
        run_query(
            snapshot_path(served),
            question.format(tmp=tmp_path.as_posix()),
            user_id=None,
            samples_dir=served.settings.samples_dir,
        )
    assert refusal in str(failed.value)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["secret.txt"]


@pytest.mark.parametrize(
    "runaway",
    [
        "SELECT sum(hash(range)) FROM range(1000000000000)",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n",
    ],
)
def test_a_runaway_query_is_stopped_at_the_time_limit(served: Served, runaway: str) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"stopped after 1 s"):
        run_query(snapshot_path(served), runaway, user_id=served.users[0], timeout_s=1.0)
    assert time.monotonic() - started < 2.0
    cpu = time.process_time()
    time.sleep(0.5)  # a measuring window, not a wait: a query still running would burn CPU here
    assert time.process_time() - cpu < 0.25


def test_the_row_cap_truncates_and_says_so(served: Served) -> None:
    path = snapshot_path(served)
    total = served.snapshot_query("SELECT count(*) FROM marts.daily_metrics")[0][0]
    capped = run_query(
        path, "SELECT * FROM marts.daily_metrics ORDER BY user_id, day", user_id=None, max_rows=7
    )
    assert (capped.row_count, len(capped.rows), capped.truncated) == (7, 7, True)
    first = served.snapshot_query(
        "SELECT user_id, day::VARCHAR FROM marts.daily_metrics ORDER BY 1, 2 LIMIT 7"
    )
    assert [row[:2] for row in capped.rows] == [list(row) for row in first]
    whole = run_query(path, "SELECT user_id, day FROM marts.daily_metrics", user_id=None, max_rows=total)
    assert (whole.row_count, whole.truncated) == (total, False)


def test_values_come_back_json_ready(served: Served) -> None:
    result = run_query(
        snapshot_path(served),
        "SELECT 'nan'::DOUBLE AS nan, 1.25::DECIMAL(5, 2) AS amount, DATE '2026-03-01' AS day, "
        "TIMESTAMPTZ '2026-03-01 06:30:00+00' AS woke, [1.5, 'inf'::DOUBLE, NULL] AS series, "
        "{'zone': 'Europe/Helsinki', 'at': TIME '07:15:00'} AS detail, INTERVAL 90 MINUTE AS span, "
        "'\\xAA\\xBB'::BLOB AS raw, 7::HUGEINT AS big",
        user_id=None,
    )
    (row,) = result.rows
    assert row[:3] == [None, 1.25, "2026-03-01"]
    assert row[3] == "2026-03-01T06:30:00+00:00"
    assert row[4:] == [[1.5, None, None], {"zone": "Europe/Helsinki", "at": "07:15:00"}, 5400.0, "qrs=", 7]
    json.dumps(result.rows, allow_nan=False)
    assert result.column_types[:3] == ["DOUBLE", "DECIMAL(5,2)", "DATE"]


def test_samples_are_offered_only_with_the_sample_store(served: Served) -> None:
    path, user = snapshot_path(served), served.users[0]
    question = "SELECT count(*) FROM samples.exercise_samples"
    with pytest.raises(QueryRefused, match="sample store is not available"):
        run_query(path, question, user_id=user)
    result = run_query(path, question, user_id=user, samples_dir=served.settings.samples_dir)
    (expected,) = served.snapshot_query(f"{question} WHERE user_id = ?", [user])
    assert result.rows == [[expected[0]]] and expected[0] > 0


def test_describe_and_summarize_of_a_public_table_work(served: Served) -> None:
    path = snapshot_path(served)
    described = run_query(path, "DESCRIBE marts.sleep_debt", user_id=served.users[0])
    direct = served.snapshot_query(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'marts' AND table_name = 'sleep_debt' ORDER BY ordinal_position"
    )
    assert [row[0] for row in described.rows] == [name for (name,) in direct]
    summary = run_query(path, "SUMMARIZE marts.sleep_debt", user_id=served.users[0])
    by_column: dict[str, Any] = {row[0]: row for row in summary.rows}
    assert by_column["user_id"][summary.columns.index("approx_unique")] == 1


def test_mistakes_get_messages_that_say_what_to_do(served: Served) -> None:
    path = snapshot_path(served)
    with pytest.raises(QueryRefused, match=r"did you mean marts\.daily_metrics\?"):
        run_query(path, "SELECT * FROM marts.daily_metric", user_id=None)
    with pytest.raises(QueryFailed, match=r'Referenced column "stepz" not found'):
        run_query(path, "SELECT stepz FROM marts.daily_metrics", user_id=None)
    with pytest.raises(QueryRefused, match="does not parse"):
        run_query(path, "SELEC 1", user_id=None)
    with pytest.raises(QueryRefused, match="nested too deeply"):
        run_query(path, "SELECT * FROM (" * 900 + "SELECT 1" + ") AS t" * 900, user_id=None)
    with pytest.raises(ValueError, match="not a user id"):
        run_query(path, "SELECT 1", user_id="x' OR '1'='1")


def test_a_samples_view_whose_files_are_gone_is_withheld_not_fatal(served: Served, tmp_path: Path) -> None:
    """A snapshot whose sample segments were removed still answers over every other relation."""
    segments = tmp_path / "samples" / "exercise_samples"
    segments.mkdir(parents=True)
    for segment in (served.settings.samples_dir / "exercise_samples").glob("*.parquet"):
        shutil.copy(segment, segments / segment.name)
    copy = tmp_path / "serving-00000001.duckdb"
    shutil.copy(snapshot_path(served), copy)
    copy.chmod(0o644)
    con = duckdb.connect(str(copy))
    con.execute(
        "CREATE OR REPLACE VIEW samples.exercise_samples AS "
        f"SELECT * FROM read_parquet('{segments.as_posix()}/*.parquet')"
    )
    con.close()
    user = served.users[0]
    counted = run_query(
        copy, "SELECT count(*) FROM samples.exercise_samples", user_id=user, samples_dir=tmp_path
    )
    assert counted.rows[0][0] > 0 and counted.generation == 1
    shutil.rmtree(segments)
    with pytest.raises(
        QueryRefused, match=r"samples\.exercise_samples cannot be queried: its files cannot be read"
    ):
        run_query(copy, "SELECT count(*) FROM samples.exercise_samples", user_id=user, samples_dir=tmp_path)
    days = run_query(copy, "SELECT count(*) FROM marts.daily_metrics", user_id=user, samples_dir=tmp_path)
    assert days.rows == [
        [served.snapshot_query("SELECT count(*) FROM marts.daily_metrics WHERE user_id = ?", [user])[0][0]]
    ]
