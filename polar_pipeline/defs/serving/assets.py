"""Publishing: copy the warehouse into a new read-only serving snapshot and switch readers to it."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from polar_pipeline.orchestration.ownership import OWNERS
from polar_pipeline.orchestration.resources import DUCKDB_POOL, ControlStoreResource, WarehouseResource
from polar_pipeline.user_zones import record_time_zones
from polar_pipeline.warehouse.snapshot import publish_snapshot

SERVING_GROUP = "serving"


def build_serving_snapshot(upstream: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """The snapshot asset; ``upstream`` are the warehouse assets it copies (for lineage)."""

    @dg.asset(
        name="serving_snapshot",
        group_name=SERVING_GROUP,
        deps=list(upstream),
        pool=DUCKDB_POOL,
        kinds={"duckdb"},
        owners=OWNERS[SERVING_GROUP],
        description=(
            "A consistent read-only copy of what readers need (marts, analytics, quarantine, and views over "
            "the sample store) that the API, the MCP server and people with the DuckDB CLI read; replaced "
            "atomically (generation file + CURRENT.json pointer), so readers never block the writer and "
            "never see a half-written partition."
        ),
    )
    def serving_snapshot(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, control_store: ControlStoreResource
    ) -> dg.MaterializeResult[Any]:
        with warehouse.get_connection() as con:
            record_time_zones(control_store.open(), con)  # so the snapshot carries today's zones
            info = publish_snapshot(
                con, Path(warehouse.snapshots_dir), samples_dir=Path(warehouse.samples_dir)
            )
        size = info.path.stat().st_size
        context.log.info(
            f"published serving snapshot generation {info.generation} at {info.path} ({size} bytes)"
        )
        return dg.MaterializeResult(
            metadata={
                "generation": info.generation,
                "path": dg.MetadataValue.path(str(info.path)),
                "size_bytes": size,
                "published_at": info.published_at.isoformat(),
            }
        )

    return serving_snapshot
