"""SQL macros: loaded from ``dbt_like_sql/macros/``, validated per file, readable from the warehouse file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from polar_pipeline.sqlmodels import ModelGraph, SqlModelError, create_views, load_models, run_models
from polar_pipeline.sqlmodels.graph import MACRO_SCHEMA
from polar_pipeline.sqlmodels.loader import MACRO_FOLDER
from polar_pipeline.warehouse.schema import ensure_raw_schema
from polar_pipeline.warehouse.writer import connect_writer, transaction
from tests.transform.conftest import transform_assets_for
from tests.transform.edge_data import EDGE_DAYS, day, write_edge_payloads
from tests.transform.test_sql_models import HEADER, small_project, write

VIEWS = ("sleep", "nightly_recharge", "activity", "exercises")
DURATION_REGEXP = r"'^P(?:(\d+(?:\.\d+)?)W)?"

MACRO = "-- Doubles a number.\nCREATE OR REPLACE MACRO twice(x) AS x * 2\n"


def test_project_macros_are_defined_once_and_called_by_the_views(graph: ModelGraph) -> None:
    folder = graph.sql_dir / MACRO_FOLDER
    assert set(graph.macros) == {path.stem for path in folder.glob("*.sql")}
    assert {"iso_duration_seconds", "iso_zone_minutes", "json_is_number", "invalid_reason"} <= set(
        graph.macros
    )
    for macro in graph.macros.values():
        assert macro.description and macro.relation == f"{MACRO_SCHEMA}.{macro.name}"
        assert macro.sql.startswith(f"CREATE OR REPLACE MACRO {MACRO_SCHEMA}.{macro.name}(")
    assert "iso_duration_seconds" in graph["activity"].macros
    assert {"iso_duration_seconds", "iso_zone_minutes", "iso_wall_clock"} <= set(graph["exercises"].macros)
    # The duration regexp is written once, in its macro, not in any model.
    files = [path for path in graph.sql_dir.rglob("*.sql") if DURATION_REGEXP in path.read_text()]
    assert files == [folder / "iso_duration_seconds.sql"]
    # sqlglot still sees only the declared sources behind the macro calls.
    assert [source.relation for source in graph["exercises"].sources] == ["raw.exercises"]


def test_a_macro_file_becomes_part_of_the_graph_and_of_its_callers_code_version(tmp_path: Path) -> None:
    small_project(tmp_path)
    write(tmp_path, "macros/twice.sql", MACRO)
    write(
        tmp_path,
        "staging/doubled.sql",
        HEADER + "-- materialized: view\n"
        "SELECT user_id, day, staging.twice(1) AS two FROM {{ source('raw', 'sleep') }}",
    )
    graph = load_models(tmp_path)
    assert list(graph.macros) == ["twice"] and graph["doubled"].macros == ("twice",)
    assert graph["sleep"].macros == () and "macros" not in graph.schemas
    before = {spec.key: spec.code_version for spec in transform_assets_for(tmp_path).view_specs}
    # Written schema-qualified this time, which is allowed too.
    write(tmp_path, "macros/twice.sql", MACRO.replace("x * 2", "x + x").replace("twice", "staging.twice"))
    after = {spec.key: spec.code_version for spec in transform_assets_for(tmp_path).view_specs}
    changed = {key.path[-1] for key in before if before[key] != after[key]}
    assert changed == {"doubled"}


@pytest.mark.parametrize(
    ("relative", "body", "message"),
    [
        (
            "macros/twice.sql",
            "-- Doubles.\nCREATE OR REPLACE MACRO double(x) AS x * 2",
            "must match its file",
        ),
        (
            "macros/twice.sql",
            MACRO + "CREATE OR REPLACE MACRO thrice(x) AS x * 3\n",
            "exactly one `CREATE OR REPLACE MACRO twice",
        ),
        ("macros/twice.sql", MACRO + ";\nSELECT 1\n", "exactly one"),
        ("macros/twice.sql", "-- Doubles.\nCREATE MACRO twice(x) AS x * 2", "CREATE OR REPLACE MACRO twice"),
        ("macros/twice.sql", "-- Doubles.\nSELECT 2", "CREATE OR REPLACE MACRO twice"),
        (
            "macros/twice.sql",
            "-- Rows.\nCREATE OR REPLACE MACRO twice(x) AS TABLE SELECT x; SELECT 1",
            "exactly one",
        ),
        ("macros/twice.sql", "CREATE OR REPLACE MACRO twice(x) AS x * 2", "describes the macro"),
        ("macros/twice.sql", MACRO.replace("MACRO twice", "MACRO marts.twice"), "live in the 'staging'"),
        ("macros/twice.sql", MACRO.replace("x * 2", "x * {{ ref('daily') }}"), "template"),
        ("macros/twice.sql", "-- Doubles.\n-- materialized: view\n" + MACRO, "no header settings"),
        ("macros/twice.sql", MACRO.replace("x * 2", "(x * 2"), "does not parse"),
        ("macros/sub/twice.sql", MACRO, "directly in"),
        ("macros/2x.sql", MACRO, "not a SQL identifier"),
    ],
)
def test_invalid_macro_files_fail_with_the_file_name(
    tmp_path: Path, relative: str, body: str, message: str
) -> None:
    small_project(tmp_path)
    bad = write(tmp_path, relative, body)
    with pytest.raises(SqlModelError) as error:
        load_models(tmp_path)
    assert str(error.value).startswith(str(bad))
    assert message in str(error.value)


def test_a_macro_calling_another_macro_is_refused(tmp_path: Path) -> None:
    small_project(tmp_path)
    write(tmp_path, "macros/twice.sql", MACRO)
    bad = write(
        tmp_path, "macros/quad.sql", "-- Quadruples.\nCREATE OR REPLACE MACRO quad(x) AS twice(twice(x))"
    )
    with pytest.raises(SqlModelError, match="may not call another macro") as error:
        load_models(tmp_path)
    assert str(error.value).startswith(str(bad))


@pytest.mark.parametrize(
    ("call", "message"),
    [("staging.thrice(1)", "unknown macro staging.thrice"), ("twice(1)", "call the macro as staging.twice")],
)
def test_a_model_calling_an_unknown_or_unqualified_macro_names_the_file(
    tmp_path: Path, call: str, message: str
) -> None:
    small_project(tmp_path)
    write(tmp_path, "macros/twice.sql", MACRO)
    bad = write(
        tmp_path,
        "marts/bad.sql",
        HEADER + f"SELECT user_id, day, {call} AS n FROM {{{{ ref('daily') }}}}",
    )
    with pytest.raises(SqlModelError, match=message) as error:
        load_models(tmp_path)
    assert str(error.value).startswith(str(bad))


ROWS_MACRO = (
    "-- The rows of a relation passed by name.\n"
    "CREATE OR REPLACE MACRO rows_of(relation) AS TABLE SELECT * FROM query_table(relation)\n"
)


def test_a_table_macro_takes_a_ref_by_name_and_the_ref_stays_a_dependency(tmp_path: Path) -> None:
    small_project(tmp_path)
    write(tmp_path, "macros/rows_of.sql", ROWS_MACRO)
    write(
        tmp_path,
        "marts/copied.sql",
        HEADER + "SELECT user_id, day FROM staging.rows_of('{{ ref(\"daily\") }}')",
    )
    graph = load_models(tmp_path)
    assert graph.macros["rows_of"].kind == "table"
    copied = graph["copied"]
    assert copied.refs == ("daily",) and copied.macros == ("rows_of",)
    assert "staging.rows_of('marts.daily')" in copied.sql


@pytest.mark.parametrize(
    ("select", "message"),
    [
        (
            "SELECT user_id, day FROM staging.twice(1)",
            "staging.twice is a scalar macro; call it as an expression",
        ),
        (
            "SELECT user_id, day, staging.rows_of('x') AS n FROM {{ ref('daily') }}",
            "is a table macro; call it in FROM",
        ),
    ],
)
def test_a_macro_called_as_the_wrong_kind_names_the_file(tmp_path: Path, select: str, message: str) -> None:
    small_project(tmp_path)
    write(tmp_path, "macros/twice.sql", MACRO)
    write(tmp_path, "macros/rows_of.sql", ROWS_MACRO)
    bad = write(tmp_path, "marts/bad.sql", HEADER + select)
    with pytest.raises(SqlModelError, match=message) as error:
        load_models(tmp_path)
    assert str(error.value).startswith(str(bad))


def test_macros_are_created_with_the_views_in_the_callers_transaction(
    graph: ModelGraph, tmp_path: Path
) -> None:
    con = connect_writer(tmp_path / "w.duckdb")
    ensure_raw_schema(con)
    with pytest.raises(RuntimeError), transaction(con):
        create_views(con, graph)
        raise RuntimeError("roll back")
    assert _macros(con) == set()
    with transaction(con):
        create_views(con, graph)
    assert _macros(con) == set(graph.macros)
    con.close()


def _macros(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT function_name FROM duckdb_functions() "
        "WHERE function_type IN ('macro', 'table_macro') AND schema_name = ? "
        "AND database_name = current_database()",
        [MACRO_SCHEMA],
    ).fetchall()
    return {str(row[0]) for row in rows}


_READ_SNAPSHOT = textwrap.dedent(
    """
    import json, sys
    import duckdb

    con = duckdb.connect(sys.argv[1], read_only=True)
    macros = con.execute(
        "SELECT function_name FROM duckdb_functions() WHERE function_type IN ('macro', 'table_macro') "
        "AND schema_name = 'staging' AND database_name = current_database() ORDER BY 1"
    ).fetchall()
    views = {}
    for view in sys.argv[2:]:
        count, rejected, digest = con.execute(
            "SELECT count(*), count(reject_reason), CAST(bit_xor(hash(v)) AS VARCHAR) "
            f"FROM staging.{view} AS v"
        ).fetchone()
        views[view] = [count, rejected, digest]
    print(json.dumps({"macros": [row[0] for row in macros], "views": views}))
    """
)


def _view_digests(con: duckdb.DuckDBPyConnection) -> dict[str, list[object]]:
    digests: dict[str, list[object]] = {}
    for view in VIEWS:
        row = con.execute(
            "SELECT count(*), count(reject_reason), CAST(bit_xor(hash(v)) AS VARCHAR) "
            f"FROM staging.{view} AS v"
        ).fetchone()
        assert row is not None
        digests[view] = list(row)
    return digests


def test_macros_and_the_views_calling_them_persist_for_readers_of_the_warehouse_file(
    graph: ModelGraph, tmp_path: Path
) -> None:
    """Macros are catalog entries like the views: opened read-only, in a new process too, the views answer."""
    con = connect_writer(tmp_path / "warehouse.duckdb")
    ensure_raw_schema(con)
    write_edge_payloads(con)
    run_models(con, graph, ["edge", "lonely"], day(0), day(EDGE_DAYS - 1), names=["daily_metrics"])
    expected = _view_digests(con)
    assert all(count for count, _, _ in expected.values())
    assert expected["exercises"][1] and expected["activity"][1]  # the untypable edge rows are there too
    con.close()
    warehouse = tmp_path / "warehouse.duckdb"

    # A new connection in this process, read-only.
    reader = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert _macros(reader) == set(graph.macros)
        assert _view_digests(reader) == expected
        assert reader.execute("SELECT staging.iso_duration_seconds('PT7H22M')").fetchone() == (26520.0,)
    finally:
        reader.close()

    # A new process that imports nothing of the project: what `duckdb -readonly` and the API see.
    result = subprocess.run(
        [sys.executable, "-c", _READ_SNAPSHOT, str(warehouse), *VIEWS],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["macros"] == sorted(graph.macros)
    assert seen["views"] == expected
