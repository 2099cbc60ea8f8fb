"""The SQL model factory: headers, ref/source rendering, the dependency graph, and load-time errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import dagster as dg
import pytest

from polar_pipeline.defs.ingest.assets import raw_asset_key
from polar_pipeline.defs.transform import definitions as transform
from polar_pipeline.defs.transform.assets import model_key
from polar_pipeline.orchestration.partitions import user_day_partitions
from polar_pipeline.orchestration.resources import WarehouseResource
from polar_pipeline.settings import get_settings
from polar_pipeline.sqlmodels import ModelGraph, SqlModelError, load_models
from tests.transform.conftest import transform_assets_for

HEADER = "-- A test model.\n"
DAILY_STREAMS = ("sleep", "nightly_recharge", "activity", "exercises", "continuous_heart_rate", "cardio_load")
"""The staging views daily_metrics reads."""


def write(root: Path, relative: str, body: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def small_project(root: Path) -> Path:
    write(
        root,
        "staging/sleep.sql",
        """
        -- Typed sleep.
        -- With a second description line.
        -- materialized: view
        -- grain: user_id, day
        SELECT user_id, day, payload FROM {{ source('raw', 'sleep') }}
        """,
    )
    write(
        root,
        "marts/daily.sql",
        """
        -- Daily rows.
        -- status: this line is description, not a setting
        SELECT user_id, day FROM {{ ref('sleep') }} WHERE list_contains($users, user_id)
        AND day BETWEEN $first_day AND $last_day
        """,
    )
    write(
        root,
        "marts/weekly.sql",
        """
        -- Weekly rows.
        -- window_days: 6
        WITH recent AS (SELECT * FROM {{ ref("daily") }} WHERE day >= $read_from)
        SELECT user_id, day FROM recent
        """,
    )
    return root


def test_headers_refs_and_dependency_order(tmp_path: Path) -> None:
    graph = load_models(small_project(tmp_path))
    assert [model.name for model in graph] == ["sleep", "daily", "weekly"]
    sleep, daily, weekly = graph["sleep"], graph["daily"], graph["weekly"]
    assert sleep.relation == "staging.sleep" and sleep.materialized == "view"
    assert sleep.description == "Typed sleep. With a second description line."
    assert [source.relation for source in sleep.sources] == ["raw.sleep"]
    assert "FROM raw.sleep" in sleep.sql and "{{" not in sleep.sql
    assert daily.materialized == "table" and daily.window_days == 0 and daily.grain == ("user_id", "day")
    assert "status: this line is description" in daily.description
    assert daily.refs == ("sleep",) and "FROM staging.sleep" in daily.sql
    assert daily.parameters == {"users", "first_day", "last_day"}
    assert weekly.window_days == 6 and weekly.refs == ("daily",) and "FROM marts.daily" in weekly.sql
    assert weekly.parameters == {"read_from"}
    assert [model.name for model in graph.views] == ["sleep"]
    assert graph.schemas == ["marts", "staging"]


def test_project_models_form_the_documented_graph() -> None:
    graph = load_models()
    assert {model.relation for model in graph.views} == {
        "staging.sleep",
        "staging.nightly_recharge",
        "staging.activity",
        "staging.exercises",
        "staging.continuous_heart_rate",
        "staging.cardio_load",
    }
    windows = {model.name: model.window_days for model in graph.tables}
    assert windows == {
        "daily_metrics": 0,
        "exercise_sessions": 0,
        "rolling_metrics": 89,
        "baselines": 60,
        "anomalies": 0,
        "hrv_status": 66,
        "training_load": 364,
        "sleep_debt": 13,
    }
    # daily_metrics reads workouts through the ephemeral counted_exercises (each workout once, either source).
    assert set(graph["daily_metrics"].refs) == set(DAILY_STREAMS) - {"exercises"} | {"counted_exercises"}
    assert {model.name for model in graph.upstream(graph["exercise_sessions"])} == {"exercises"}
    assert graph["exercise_sessions"].relation == "marts.exercises"  # staging.exercises holds the name
    # anomalies names the ephemeral metric_values, which is inlined: what it reads is daily_metrics.
    assert set(graph["anomalies"].refs) == {"metric_values", "baselines"}
    assert {model.name for model in graph.upstream(graph["anomalies"])} == {"daily_metrics", "baselines"}
    order = [model.name for model in graph]
    assert order.index("baselines") < order.index("anomalies")
    for model in graph:
        assert model.description and model.path.read_text().startswith("-- ")


@pytest.mark.parametrize(
    ("relative", "body", "message"),
    [
        ("marts/bad.sql", HEADER + "SELECT user_id, day FROM {{ ref('nope') }}", "unknown ref 'nope'"),
        ("marts/bad.sql", HEADER + "SELECT user_id, day FROM {{ source('raw', 'steps') }}", "unknown source"),
        ("marts/bad.sql", HEADER + "SELECT user_id, day FROM marts.daily", "named directly"),
        ("marts/bad.sql", HEADER + "SELECT user_id, day FROM daily", "neither a CTE"),
        (
            "marts/bad.sql",
            HEADER + "SELECT user_id, day FROM {{ ref('daily') }} WHERE day > $today",
            "$today",
        ),
        (
            "marts/bad.sql",
            HEADER + "SELECT user_id, day FROM {{ ref('daily') }} WHERE day > ?",
            "named parameters",
        ),
        ("marts/bad.sql", HEADER + "SELECT FROM WHERE {{ ref('daily') }}", "does not parse"),
        ("marts/bad.sql", HEADER + "SELECT {{ var('x') }}", "unsupported template"),
        (
            "marts/bad.sql",
            HEADER + "-- window_day: 3\nSELECT user_id, day FROM {{ ref('daily') }}",
            "window_days",
        ),
        ("marts/bad.sql", HEADER + "-- materialized: incremental\nSELECT 1", "materialized must be"),
        ("marts/bad.sql", "SELECT user_id, day FROM {{ ref('daily') }}", "describes the model"),
        ("marts/sleep.sql", HEADER + "SELECT user_id, day FROM {{ ref('daily') }}", "already used"),
        (
            "marts/twin.sql",
            HEADER + "-- alias: daily\nSELECT user_id, day FROM {{ ref('sleep') }}",
            "already written",
        ),
        (
            "marts/bad.sql",
            HEADER + "-- alias: bad-name\nSELECT user_id, day FROM {{ ref('sleep') }}",
            "alias",
        ),
        (
            "staging/v.sql",
            HEADER + "-- materialized: view\nSELECT * FROM {{ ref('daily') }}",
            "cannot ref the table",
        ),
        ("loose.sql", HEADER + "SELECT 1", "schema folder"),
    ],
)
def test_invalid_models_fail_with_the_file_name(
    tmp_path: Path, relative: str, body: str, message: str
) -> None:
    small_project(tmp_path)
    bad = write(tmp_path, relative, body)
    with pytest.raises(SqlModelError) as error:
        load_models(tmp_path)
    assert str(error.value).startswith(str(bad)) or str(bad) in str(error.value)
    assert message in str(error.value)


def test_an_alias_names_the_relation_and_the_asset_of_a_model(tmp_path: Path) -> None:
    """Names are unique across schemas, so a mart shares a view's table name only through an alias."""
    small_project(tmp_path)
    write(
        tmp_path,
        "marts/sleep_nights.sql",
        HEADER + "-- alias: sleep\nSELECT user_id, day FROM {{ ref('sleep') }}",
    )
    graph = load_models(tmp_path)
    nights = graph["sleep_nights"]
    assert nights.relation == "marts.sleep" and graph["sleep"].relation == "staging.sleep"
    assert model_key(nights) == dg.AssetKey(["marts", "sleep"])
    built = transform_assets_for(tmp_path)
    assert dg.AssetKey(["marts", "sleep"]) in built.table_keys


def test_a_cycle_names_every_file_in_it(tmp_path: Path) -> None:
    small_project(tmp_path)
    first = write(tmp_path, "marts/a.sql", HEADER + "SELECT user_id, day FROM {{ ref('b') }}")
    second = write(tmp_path, "marts/b.sql", HEADER + "SELECT user_id, day FROM {{ ref('a') }}")
    with pytest.raises(SqlModelError, match="dependency cycle") as error:
        load_models(tmp_path)
    assert str(first) in str(error.value) and str(second) in str(error.value)


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        (
            "ghost",
            HEADER + "SELECT user_id, day FROM {{ ref('ghost_upstream') }}",
            "unknown ref 'ghost_upstream'",
        ),
        ("loop", HEADER + "SELECT user_id, day FROM {{ ref('weekly') }}", "dependency cycle"),
    ],
)
def test_definitions_loading_fails_for_an_unknown_ref_or_a_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str, message: str
) -> None:
    small_project(tmp_path)
    bad = write(tmp_path, f"marts/{name}.sql", body)
    if name == "loop":
        write(tmp_path, "marts/daily.sql", HEADER + "SELECT user_id, day FROM {{ ref('loop') }}")
    monkeypatch.setenv("POLAR_SQL_DIR", str(tmp_path))
    with pytest.raises(SqlModelError, match=message) as error:
        transform.build_defs(get_settings())
    assert str(bad) in str(error.value)


def test_factory_builds_staging_specs_and_partitioned_marts(tmp_path: Path) -> None:
    built = transform_assets_for(small_project(tmp_path))
    (spec,) = built.view_specs
    assert spec.key == dg.AssetKey(["staging", "sleep"]) and spec.group_name == "staging"
    assert {dep.asset_key for dep in spec.deps} == {raw_asset_key("sleep")}
    assert spec.partitions_def is None and spec.description == "Typed sleep. With a second description line."
    daily, weekly = built.table_assets
    assert daily.key == dg.AssetKey(["marts", "daily"])
    assert daily.partitions_def is not None and daily.backfill_policy == dg.BackfillPolicy.single_run()
    assert daily.group_names_by_key[daily.key] == "marts"
    # A table reading a view also depends on the raw asset behind it, so raw runs first inside one run.
    assert set(daily.asset_deps[daily.key]) == {dg.AssetKey(["staging", "sleep"]), raw_asset_key("sleep")}
    mapping = weekly.get_partition_mapping(dg.AssetKey(["marts", "daily"]))
    assert isinstance(mapping, dg.MultiPartitionMapping)
    day_mapping = mapping.downstream_mappings_by_upstream_dimension["day"].partition_mapping
    assert isinstance(day_mapping, dg.TimeWindowPartitionMapping) and day_mapping.start_offset == -6


def test_real_transform_definitions_load_with_lineage(graph: ModelGraph, tmp_path: Path) -> None:
    warehouse = WarehouseResource(
        database=str(tmp_path / "w.duckdb"),
        snapshots_dir=str(tmp_path / "snapshots"),
        samples_dir=str(tmp_path / "samples"),
    )
    transform_defs = transform.build_defs(get_settings())
    defs = dg.Definitions.merge(transform_defs, dg.Definitions(resources={"warehouse": warehouse}))
    dg.Definitions.validate_loadable(defs)
    assets = list(transform_defs.assets or [])
    assert len([a for a in assets if isinstance(a, dg.AssetSpec)]) == len(graph.views)
    assert len([a for a in assets if isinstance(a, dg.AssetsDefinition)]) == len(graph.tables)
    job = defs.resolve_job_def("transform_job")
    assert job.partitions_def == user_day_partitions(get_settings())
    asset_graph = defs.resolve_asset_graph()
    daily = model_key(graph["daily_metrics"])
    # Continuous heart rate and cardio load are written by raw_activity: no asset of their own.
    assert asset_graph.get(daily).parent_keys == {
        dg.AssetKey(["staging", name]) for name in DAILY_STREAMS
    } | {raw_asset_key(name) for name in ("sleep", "nightly_recharge", "activity", "exercises")}
    assert model_key(graph["exercise_sessions"]) == dg.AssetKey(["marts", "exercises"])
    assert asset_graph.get(dg.AssetKey(["staging", "sleep"])).parent_keys == {raw_asset_key("sleep")}
