"""Columns documented once beside each model, declared data tests, the generated docs, and the asset checks.

The declared tests are the models' own claims about their rows: here they are held to the simulator data,
the docs to the models, and the Dagster checks to the rule that only a broken table blocks downstream while
one user's odd value halts nobody.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from polar_pipeline.defs.transform import definitions as transform
from polar_pipeline.defs.transform.assets import model_key
from polar_pipeline.orchestration.partitions import range_tags
from polar_pipeline.orchestration.resources import WarehouseResource
from polar_pipeline.settings import get_settings
from polar_pipeline.sqlmodels import ModelGraph, SqlModelError, evaluate_tests, load_models
from polar_pipeline.sqlmodels.docs import DOCS_PATH, render, undocumented
from polar_pipeline.warehouse.raw_store import RawBatch, RawRecord, store_raw_batches
from polar_pipeline.warehouse.schema import RAW_TABLES, ensure_raw_schema
from polar_pipeline.warehouse.writer import connect_writer
from tests.transform.conftest import SimWarehouse, transform_assets_for
from tests.transform.test_sql_models import HEADER, small_project, write


def test_every_public_relation_describes_exactly_its_columns(graph: ModelGraph) -> None:
    assert undocumented(graph) == []
    described = {model.relation for model in graph.relations if model.contract} | set(graph.sources)
    assert {model.relation for model in graph.relations} <= described
    assert {f"raw.{table.name}" for table in RAW_TABLES.values()} | {"raw.quarantine"} == set(graph.sources)


def test_a_column_missing_from_the_yaml_is_reported(tmp_path: Path) -> None:
    small_project(tmp_path)
    write(tmp_path, "staging/sleep.yml", "columns:\n  - name: user_id\n    description: The user.\n")
    problems = undocumented(load_models(tmp_path))
    assert any("staging/sleep.yml" in p and "'day', 'payload'" in p for p in problems), problems
    assert any("marts.daily: no YAML" in p for p in problems), problems


def test_docs_sql_md_is_generated_from_the_models_and_current(graph: ModelGraph) -> None:
    text = render(graph)
    assert DOCS_PATH.read_text(encoding="utf-8") == text, "docs/sql.md is stale: run `make docs`"
    for model in graph.relations:
        assert f"### `{model.relation}`" in text
        assert model.contract is not None
        for column in model.contract.columns:
            assert f"| `{column.name}` |" in text


def test_every_declared_test_passes_on_the_simulator_warehouse(sim_marts: SimWarehouse) -> None:
    graph = load_models()
    con = duckdb.connect(str(sim_marts.path), read_only=True)
    try:
        contracts = [(m.relation, m.contract) for m in graph.relations] + list(graph.sources.items())
        failures = []
        counted = 0
        for relation, contract in contracts:
            assert contract is not None and contract.tests, relation
            for outcome in evaluate_tests(con, relation, contract.tests):
                counted += 1
                if not outcome.passed:
                    failures.append((relation, outcome.test.name, outcome.failing, outcome.sample_markdown))
    finally:
        con.close()
    assert counted >= 100
    assert failures == []


def test_a_declared_test_finds_the_rows_that_break_it(sim_marts: SimWarehouse, tmp_path: Path) -> None:
    """The same tests fail, with the right counts, once rows are broken on purpose."""
    path = sim_marts.copy_to(tmp_path)
    con = duckdb.connect(str(path))
    try:
        con.execute("UPDATE marts.baselines SET q1 = median + 1 WHERE metric = 'steps' AND n > 0")
        broken = con.execute(
            "SELECT count(*) FROM marts.baselines WHERE metric = 'steps' AND n > 0"
        ).fetchone()
        con.execute("INSERT INTO marts.sleep_debt SELECT * FROM marts.sleep_debt LIMIT 3")
        graph = load_models()
        outcomes = {
            outcome.test.name: outcome
            for name in ("baselines", "sleep_debt")
            for outcome in evaluate_tests(con, graph[name].relation, graph[name].contract.tests)  # type: ignore[union-attr]
        }
    finally:
        con.close()
    assert broken is not None and broken[0] > 0
    assert outcomes["quartiles_ordered"].failing == broken[0]
    assert outcomes["quartiles_ordered"].test.blocking
    assert (
        outcomes["unique_user_id_day"].failing == 3
        and "copies" in outcomes["unique_user_id_day"].sample_markdown
    )


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("columns: []\n", "list the relation's columns"),
        ("columns:\n  - name: user_id\n", "needs a description"),
        (
            "columns:\n  - name: user_id\n    description: u\n    tests: [positive]\n",
            "unknown test 'positive'",
        ),
        ("columns:\n  - name: user_id\n    description: u\ntests:\n  - unique: [nope]\n", "unknown column"),
        ("columns:\n  - {name: user_id, description: u, tests: [{accepted_range: {}}]}\n", "needs min, max"),
        ("columns:\n  - {name: user_id, description: u}\nowner: me\n", r"unknown key\(s\) owner"),
        (
            "columns:\n  - {name: n, description: u, tests: [{not_null: {severity: fatal}}]}\n",
            "'error' or 'warn'",
        ),
        ("columns: [\n", "not valid YAML"),
    ],
)
def test_a_malformed_yaml_fails_loading_with_the_file_name(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    small_project(tmp_path)
    bad = write(tmp_path, "marts/daily.yml", yaml_text)
    with pytest.raises(SqlModelError, match=message) as error:
        load_models(tmp_path)
    assert str(error.value).startswith(str(bad))


def test_every_declared_test_on_a_mart_is_an_asset_check_blocking_only_for_errors() -> None:
    settings = get_settings()
    graph = transform.model_graph(settings)
    defs = transform.build_defs(settings)
    specs = {(key.asset_key, key.name): spec for key, spec in _check_specs(defs).items()}
    for model in graph.tables:
        assert model.contract is not None
        for test in model.contract.tests:
            spec = specs[(model_key(model), test.name)]
            assert spec.blocking == (test.severity == "error")
    assert len(specs) == sum(len(m.contract.tests) for m in graph.tables if m.contract)


def _check_specs(defs: dg.Definitions) -> dict[dg.AssetCheckKey, dg.AssetCheckSpec]:
    found = {}
    for asset in defs.assets or []:
        if isinstance(asset, dg.AssetsDefinition):
            found |= {spec.key: spec for spec in asset.check_specs}
    return found


def _raw_sleep(con: duckdb.DuckDBPyConnection, user: str, rows: list[tuple[date, dict[str, Any]]]) -> None:
    records = [RawRecord(day.isoformat(), day, json.dumps(payload)) for day, payload in rows]
    store_raw_batches(con, "sleep", {user: RawBatch(records)}, source="test", fetched_at=_NOW)


_NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_a_failing_blocking_check_stops_downstream_assets(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """A duplicate grain in marts.daily fails its blocking check, so marts.weekly is not materialized."""
    small_project(tmp_path / "sql")
    write(
        tmp_path / "sql",
        "staging/sleep.sql",
        "-- Typed sleep.\n-- materialized: view\n"
        "SELECT user_id, day, day AS raw_day, strftime(day, '%Y-%m-%d') AS record_key,\n"
        "    payload::VARCHAR AS raw_payload, NULL::VARCHAR AS reject_reason\n"
        "FROM {{ source('raw', 'sleep') }}",
    )
    write(
        tmp_path / "sql",
        "marts/daily.sql",
        HEADER + "SELECT user_id, day FROM {{ ref('sleep') }}\n"
        "UNION ALL SELECT user_id, day FROM {{ ref('sleep') }}",
    )
    write(
        tmp_path / "sql",
        "marts/daily.yml",
        "columns:\n  - {name: user_id, description: u}\n  - {name: day, description: d}\n"
        "tests:\n  - unique: [user_id, day]\n",
    )
    day = date(2026, 1, 5)
    con = connect_writer(tmp_path / "w.duckdb")
    ensure_raw_schema(con)
    _raw_sleep(con, "alice", [(day, {"date": day.isoformat()})])
    con.close()
    built = transform_assets_for(tmp_path / "sql")
    warehouse = WarehouseResource(
        database=str(tmp_path / "w.duckdb"),
        snapshots_dir=str(tmp_path / "serving"),
        samples_dir=str(tmp_path / "samples"),
    )
    defs = dg.Definitions(
        assets=[*built.view_specs, *built.table_assets],
        jobs=[dg.define_asset_job("job", selection=dg.AssetSelection.assets(*built.table_assets))],
        resources={"warehouse": warehouse},
    )
    instance.add_dynamic_partitions("users", ["alice"])
    result = defs.resolve_job_def("job").execute_in_process(
        instance=instance, tags=range_tags("alice", day, day), raise_on_error=False
    )
    assert not result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "unique_user_id_day" and not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["failing_rows"].value == 1
    assert result.asset_materializations_for_node("marts__daily")
    assert not result.asset_materializations_for_node("marts__weekly")


def test_one_users_bad_values_halt_none_of_the_other_users_partitions(
    sim_raw: SimWarehouse, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    """A payload staging cannot type is quarantined and an odd-but-typable value only warns; every user's
    partitions of every mart still materialize in the one run."""
    path = sim_raw.copy_to(tmp_path)
    bad_user, good_user = sim_raw.users[0], sim_raw.users[1]
    first = sim_raw.first_day + timedelta(days=40)
    last = first + timedelta(days=9)
    con = connect_writer(path)
    untypable, odd = first + timedelta(days=2), first + timedelta(days=5)
    for day, score in ((untypable, 150), (odd, 0)):
        (row,) = con.execute(
            "SELECT payload FROM raw.sleep WHERE user_id = ? AND day = ?", [bad_user, day]
        ).fetchall()
        payload = json.loads(row[0]) | {"sleep_score": score}
        _raw_sleep(con, bad_user, [(day, payload)])
    con.close()

    settings = get_settings()
    warehouse = WarehouseResource(
        database=str(path), snapshots_dir=str(tmp_path / "serving"), samples_dir=str(tmp_path / "samples")
    )
    job = dg.Definitions.merge(
        transform.build_defs(settings), dg.Definitions(resources={"warehouse": warehouse})
    ).resolve_job_def("transform_job")
    instance.add_dynamic_partitions("users", list(sim_raw.users[:2]))
    result = job.execute_in_process(
        instance=instance, tags=range_tags(bad_user, first, last, last_user=good_user), raise_on_error=False
    )
    assert result.success
    days = (last - first).days + 1
    for model in transform.model_graph(settings).tables:
        node = model_key(model).to_python_identifier()
        assert len(result.asset_materializations_for_node(node)) == 2 * days, model.name
    evaluations = {
        e.check_name: e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[-1] == "daily_metrics"
    }
    assert not evaluations["sleep_score_accepted_range"].passed
    assert evaluations["sleep_score_accepted_range"].severity == dg.AssetCheckSeverity.WARN
    assert evaluations["sleep_score_accepted_range"].metadata["failing_rows"].value == 1
    assert all(
        e.passed for e in result.get_asset_check_evaluations() if e.severity == dg.AssetCheckSeverity.ERROR
    )

    con = duckdb.connect(str(path), read_only=True)
    try:
        quarantined = con.execute(
            "SELECT reason FROM raw.quarantine WHERE user_id = ? AND day = ? AND stream = 'staging.sleep'",
            [bad_user, untypable],
        ).fetchall()
        rows = dict(
            con.execute(
                "SELECT user_id, count(*) FROM marts.daily_metrics WHERE day BETWEEN ? AND ? GROUP BY ALL",
                [first, last],
            ).fetchall()
        )
        scores = dict(
            con.execute(
                "SELECT day, sleep_score FROM marts.daily_metrics WHERE user_id = ? AND day IN (?, ?)",
                [bad_user, untypable, odd],
            ).fetchall()
        )
    finally:
        con.close()
    assert len(quarantined) == 1 and "sleep_score" in quarantined[0][0]
    assert rows == {bad_user: days, good_user: days}
    assert scores == {untypable: None, odd: 0}


def test_no_day_gaps_finds_the_missing_days_inside_each_users_history(tmp_path: Path) -> None:
    """A day without a row between a user's first and last day is a gap, even when the slice has no row."""
    from polar_pipeline.sqlmodels.contracts import DataTest
    from polar_pipeline.warehouse.slices import UserDaySlice

    test = DataTest("no_day_gaps", "no_day_gaps", ("user_id", "day"), "warn", "gaps")
    con = duckdb.connect()
    con.execute("CREATE TABLE t (user_id VARCHAR, day DATE, v INTEGER)")
    days = {"a": [1, 2, 4, 5], "b": [1, 6], "c": [3]}
    con.executemany(
        "INSERT INTO t VALUES (?, ?, 0)",
        [
            (
                user,
                date(2026, 3, n),
            )
            for user, ns in days.items()
            for n in ns
        ],
    )
    everything = evaluate_tests(con, "t", [test])[0]
    assert everything.failing == 1 + 4 and everything.failing_by_user == {"a": 1, "b": 4}
    window = UserDaySlice(("a", "b", "c"), date(2026, 3, 3), date(2026, 3, 4))
    (outcome,) = evaluate_tests(con, "t", [test], window)
    assert outcome.failing_by_user == {"a": 1, "b": 2}  # b has no row in the slice, and still a gap
    assert not test.blocking
    edge = UserDaySlice(("a",), date(2026, 3, 5), date(2026, 3, 9))
    assert evaluate_tests(con, "t", [test], edge)[0].failing == 0  # after the last day is no gap
