"""Each ``polar_pipeline.analytics`` function as a user × day partitioned ``analytics.<name>`` table.

The functions are pure (polars in, polars out); this module is the only place that reads their inputs from
the warehouse and writes their rows back. A run reads each input relation for the run's users and days
``[first_day - lookback_days, last_day]`` in one query, calls the function once for the whole slice (all
users and days: one vectorised pass, never a loop over partitions), and replaces the slice of its table in
one transaction with the slice writer every mart uses; a slice longer than ``CHUNK_USER_DAYS`` user-days
(an import's years) goes chunk by chunk, the way the SQL models do. Dependencies carry the same
trailing-window mapping as the windowed marts, so Dagster's lineage knows how far back each table reads.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from polar_pipeline.orchestration.ownership import OWNERS
from polar_pipeline.orchestration.partitions import partition_scope
from polar_pipeline.orchestration.resources import DUCKDB_POOL, WarehouseResource
from polar_pipeline.orchestration.window_mapping import trailing_window_mapping
from polar_pipeline.sqlmodels import slice_preview
from polar_pipeline.sqlmodels.runner import CHUNK_USER_DAYS, day_chunks
from polar_pipeline.warehouse.pause import pause_point
from polar_pipeline.warehouse.slices import UserDaySlice, replace_slice
from polar_pipeline.warehouse.writer import transaction

ANALYTICS_GROUP = "analytics"
ANALYTICS_SCHEMA = "analytics"

AnalyticsFunction = Callable[..., pl.DataFrame]
"""``f(*input_frames, first_day, last_day) -> rows for [first_day, last_day]`` (analytics/__init__.py)."""


@dataclass(frozen=True)
class AnalyticsTable:
    """One analytics table: the function that computes it and the relations it reads, in argument order."""

    name: str
    compute: AnalyticsFunction
    inputs: tuple[str, ...]
    lookback_days: int
    description: str

    @property
    def relation(self) -> str:
        return f"{ANALYTICS_SCHEMA}.{self.name}"

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey([ANALYTICS_SCHEMA, self.name])


def relation_key(relation: str) -> dg.AssetKey:
    """``marts.daily_metrics`` -> ``marts/daily_metrics``: tables and their assets share a name."""
    return dg.AssetKey(relation.split("."))


def read_inputs(
    con: duckdb.DuckDBPyConnection, table: AnalyticsTable, user_day_slice: UserDaySlice
) -> list[pl.DataFrame]:
    """Each input relation's rows for the slice's users and days ``[first_day - lookback, last_day]``."""
    params = {
        "users": list(user_day_slice.users),
        "read_from": user_day_slice.first_day - timedelta(days=table.lookback_days),
        "last_day": user_day_slice.last_day,
    }
    return [
        con.sql(
            f"SELECT * FROM {relation} WHERE list_contains($users, user_id) "
            "AND day BETWEEN $read_from AND $last_day ORDER BY ALL",
            params=params,
        ).pl()
        for relation in table.inputs
    ]


def run_analytics_table(
    con: duckdb.DuckDBPyConnection, table: AnalyticsTable, user_day_slice: UserDaySlice
) -> tuple[int, int]:
    """Compute ``table`` for the slice and replace its rows there; (rows deleted, rows written).

    A long slice (an import's years) is computed and written in chunks of ``CHUNK_USER_DAYS``, oldest first,
    each reading its own lookback: the functions are slice-invariant (a 3-day refresh and a backfill give the
    same rows), so the rows are the same, and memory is that of one chunk."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ANALYTICS_SCHEMA}")
    deleted = written_rows = 0
    users = user_day_slice.users
    for first_day, last_day in day_chunks(
        user_day_slice.first_day, user_day_slice.last_day, max(1, CHUNK_USER_DAYS // max(1, len(users)))
    ):
        chunk = UserDaySlice(users, first_day, last_day)
        frames = read_inputs(con, table, chunk)
        rows = table.compute(*frames, first_day, last_day)
        with transaction(con, table.relation):
            written = replace_slice(con, table.relation, chunk, rows)
        deleted += written.rows_deleted
        written_rows += written.rows_written
    return deleted, written_rows


def build_analytics_asset(
    table: AnalyticsTable, partitions_def: dg.PartitionsDefinition[Any]
) -> dg.AssetsDefinition:
    mapping = trailing_window_mapping(table.lookback_days) if table.lookback_days > 0 else None
    deps = [dg.AssetDep(relation_key(relation), partition_mapping=mapping) for relation in table.inputs]

    @dg.asset(
        key=table.key,
        deps=deps,
        description=table.description,
        group_name=ANALYTICS_GROUP,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=DUCKDB_POOL,
        kinds={"duckdb", "polars"},
        owners=OWNERS[ANALYTICS_GROUP],
        metadata={
            "relation": table.relation,
            "inputs": ", ".join(table.inputs),
            "lookback_days": table.lookback_days,
            "function": f"{table.compute.__module__}.{table.compute.__name__}",
        },
    )
    def analytics_table(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult[Any]:
        scope = partition_scope(context)
        with warehouse.get_connection() as con:
            pause_point(f"model:{table.relation}")
            deleted, written = run_analytics_table(con, table, scope)
            preview = slice_preview(con, table.relation, scope)
        context.log.info(
            f"{table.relation}: {written} rows written ({deleted} replaced) for {len(scope.users)} user(s), "
            f"{scope.first_day}..{scope.last_day}"
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": written,
                "preview": dg.MetadataValue.md(preview),
                "rows_replaced": deleted,
                "first_day": scope.first_day.isoformat(),
                "last_day": scope.last_day.isoformat(),
            }
        )

    return analytics_table


def analytics_keys(tables: Sequence[AnalyticsTable]) -> list[dg.AssetKey]:
    return [table.key for table in tables]
