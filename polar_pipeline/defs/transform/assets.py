"""The factory: each ``dbt_like_sql`` model becomes a Dagster asset, so lineage reads raw → staging → marts.

* A **view** model becomes an ``AssetSpec`` (group ``staging``): unpartitioned and never materialized by
  Dagster, so it costs nothing per partition; its deps are the raw assets it reads. Every mart step
  recreates all views inside its own transaction (``CREATE OR REPLACE VIEW`` is cheap and idempotent).
* A **table** model becomes a user × day partitioned asset (group ``marts``) with a single-run backfill
  policy and the ``duckdb`` pool. A dependency on another table is declared with a partition mapping that
  reaches ``window_days`` back, so Dagster knows a 90-day window reads 90 upstream days. The tests declared
  in the model's YAML become its asset checks (``checks.py``), evaluated over the run's slice.
* An **ephemeral** model is no asset: it is inlined where it is ref'd, and its upstreams become the deps
  of the models that read it.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

import dagster as dg

from polar_pipeline.defs.ingest.assets import raw_asset_key
from polar_pipeline.defs.transform.checks import check_results, check_specs
from polar_pipeline.orchestration.ownership import OWNERS
from polar_pipeline.orchestration.partitions import partition_scope
from polar_pipeline.orchestration.resources import DUCKDB_POOL, WarehouseResource
from polar_pipeline.orchestration.window_mapping import trailing_window_mapping
from polar_pipeline.sqlmodels import ModelGraph, SourceTable, SqlModel, run_table_model
from polar_pipeline.warehouse.pause import pause_point

_CheckedResult = dg.MaterializeResult
"""The unsubscripted class: Dagster recognises only it as the result of an asset that also reports checks."""

STAGING_GROUP = "staging"
MARTS_GROUP = "marts"


@dataclass(frozen=True)
class TransformAssets:
    """The parsed model graph and the Dagster objects built from it."""

    graph: ModelGraph
    view_specs: list[dg.AssetSpec]
    table_assets: list[dg.AssetsDefinition]

    @property
    def table_keys(self) -> list[dg.AssetKey]:
        return [key for asset in self.table_assets for key in asset.keys]


def model_key(model: SqlModel) -> dg.AssetKey:
    """``staging/sleep``, ``marts/daily_metrics``: the schema-qualified relation as a two-part key."""
    return dg.AssetKey(model.relation.split("."))


def build_transform_assets(
    graph: ModelGraph, partitions_def: dg.PartitionsDefinition[Any]
) -> TransformAssets:
    """The Dagster objects for a loaded, validated model graph."""
    return TransformAssets(
        graph=graph,
        view_specs=[_view_spec(graph, model) for model in graph.views],
        table_assets=[_table_asset(graph, model, partitions_def) for model in graph.tables],
    )


def table_keys(graph: ModelGraph) -> list[dg.AssetKey]:
    """The asset keys of the table models (what a publish copies besides raw)."""
    return [model_key(model) for model in graph.tables]


def _code_version(graph: ModelGraph, model: SqlModel) -> str:
    """A hash of the model's file and of the macro files it calls: editing a macro marks its callers stale."""
    digest = hashlib.sha256(model.template.encode())
    for name in model.macros:
        digest.update(b"\0" + graph.macros[name].template.encode())
    return digest.hexdigest()[:16]


def _static_metadata(graph: ModelGraph, model: SqlModel) -> dict[str, Any]:
    return {
        "relation": model.relation,
        "materialized": model.materialized,
        "grain": ", ".join(model.grain),
        "window_days": model.window_days,
        "sql_file": str(model.path.relative_to(graph.sql_dir.parent)),
    }


def _deps(graph: ModelGraph, model: SqlModel) -> list[dg.AssetDep]:
    """Refs and raw sources; partitioned upstreams of a windowed table get the trailing-window mapping.

    A table also depends directly on the raw assets behind the views it reads: a view is never executed,
    so without that edge Dagster would not run raw before marts inside one run, nor mark a mart partition
    stale when its raw partition changes. Views are unpartitioned, so a dep on a view takes no mapping.
    """
    windowed = model.materialized == "table" and model.window_days > 0
    mapping = trailing_window_mapping(model.window_days) if windowed else None
    deps: list[dg.AssetDep] = []
    for upstream in graph.upstream(model):
        upstream_mapping = mapping if upstream.materialized == "table" else None
        deps.append(dg.AssetDep(model_key(upstream), partition_mapping=upstream_mapping))
    raw_tables = [source.table for source in graph.sources_of(model)]
    if model.materialized == "table":
        raw_tables += [source.table for source in _sources_behind_views(graph, model)]
    for table in dict.fromkeys(raw_tables):
        deps.append(dg.AssetDep(raw_asset_key(table), partition_mapping=mapping))
    return deps


def _sources_behind_views(graph: ModelGraph, model: SqlModel) -> list[SourceTable]:
    """The raw tables read through the views ``model`` refs, following views that ref views."""
    found: list[SourceTable] = []
    pending = [upstream for upstream in graph.upstream(model) if upstream.materialized == "view"]
    while pending:
        view = pending.pop(0)
        found += [source for source in graph.sources_of(view) if source not in found]
        pending += graph.upstream(view)
    return found


def _view_spec(graph: ModelGraph, model: SqlModel) -> dg.AssetSpec:
    metadata = _static_metadata(graph, model)
    del metadata["window_days"]
    return dg.AssetSpec(
        key=model_key(model),
        deps=_deps(graph, model),
        description=model.description,
        group_name=STAGING_GROUP,
        kinds={"duckdb", "sql"},
        owners=OWNERS[STAGING_GROUP],
        metadata=metadata,
        code_version=_code_version(graph, model),
    )


def _table_asset(
    graph: ModelGraph, model: SqlModel, partitions_def: dg.PartitionsDefinition[Any]
) -> dg.AssetsDefinition:
    key = model_key(model)
    tests = model.contract.tests if model.contract else ()

    @dg.asset(
        key=key,
        deps=_deps(graph, model),
        description=model.description,
        group_name=MARTS_GROUP,
        partitions_def=partitions_def,
        check_specs=check_specs(key, tests),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=DUCKDB_POOL,
        kinds={"duckdb", "sql"},
        owners=OWNERS[MARTS_GROUP],
        metadata=_static_metadata(graph, model),
        code_version=_code_version(graph, model),
    )
    def sql_table(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> _CheckedResult:  # type: ignore[type-arg]
        scope = partition_scope(context)
        with warehouse.get_connection() as con:
            pause_point(f"model:{model.relation}")  # crash tests: between the previous model and this one
            run = run_table_model(con, graph, model.name, scope.users, scope.first_day, scope.last_day)
            checked = check_results(con, model.relation, tests, scope)
        context.log.info(
            f"{run.relation}: {run.rows_written} rows written ({run.rows_deleted} replaced) for "
            f"{len(run.users)} user(s), {run.first_day}..{run.last_day}, reading from {run.read_from}"
            + (f"; {run.rows_quarantined} untypable staging rows quarantined" if run.rows_quarantined else "")
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": run.rows_written,
                "preview": dg.MetadataValue.md(run.preview_markdown),
                "first_day": run.first_day.isoformat(),
                "last_day": run.last_day.isoformat(),
                "read_from": run.read_from.isoformat(),
                "users": dg.MetadataValue.json(list(run.users)),
                "rows_replaced": run.rows_deleted,
                "rows_quarantined": run.rows_quarantined,
            },
            check_results=checked,
        )

    return sql_table
