"""``analytics.data_health``: each user's freshness and sync state, evaluated by each publish first."""

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from polar_pipeline.defs.serving.assets import SERVING_GROUP
from polar_pipeline.health import DATA_HEALTH_TABLE, WARN, refresh_data_health
from polar_pipeline.orchestration.ownership import OWNERS
from polar_pipeline.orchestration.resources import DUCKDB_POOL, ControlStoreResource, WarehouseResource
from polar_pipeline.settings import get_settings
from polar_pipeline.sqlmodels import markdown_table
from polar_pipeline.sync_outcomes import SyncOutcomes

DATA_HEALTH_KEY = dg.AssetKey(DATA_HEALTH_TABLE.split("."))


def build_data_health(upstream: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """The health asset; ``upstream`` are the raw assets whose tables it reads (for lineage)."""

    @dg.asset(
        key=DATA_HEALTH_KEY,
        group_name=SERVING_GROUP,
        deps=list(upstream),
        pool=DUCKDB_POOL,
        kinds={"duckdb"},
        owners=OWNERS[SERVING_GROUP],
        description=(
            "Each user's data health for their local day: when new data last arrived (36 h without it is "
            "'warn'), the last successful sync and the failures since, and one state (reauthorize, "
            "sync_failed, sync_failing, never_synced, ok, sync_overdue, not_worn) that tells a watch not "
            "worn from a sync failing; with the failing data checks and the quarantined records. One row "
            "per user and day, replaced by each publish of the day (docs/operations.md)."
        ),
    )
    def data_health(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, control_store: ControlStoreResource
    ) -> dg.MaterializeResult[Any]:
        users = control_store.open().list_users()
        sync_states = SyncOutcomes(Path(control_store.path)).states()
        with warehouse.get_connection() as con:
            rows = refresh_data_health(
                con, get_settings(), users=users, sync_states=sync_states, now=datetime.now(UTC)
            )
        counts = dict(sorted(Counter(row.state for row in rows).items()))
        context.log.info(f"{DATA_HEALTH_TABLE}: {len(rows)} user(s): {counts}")
        # Counts only, no user ids: this metadata outlives a user's deletion (publish runs are everyone's).
        by_state = Counter((row.state, row.freshness) for row in rows)
        preview = [[state, freshness, n] for (state, freshness), n in sorted(by_state.items())]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(rows),
                "states": dg.MetadataValue.json(counts),
                "freshness_warn": sum(row.freshness == WARN for row in rows),
                "preview": dg.MetadataValue.md(markdown_table(["state", "freshness", "users"], preview)),
            }
        )

    return data_health
