"""Raw user × day assets: pull one AccessLink stream for the run's users and days, upsert it verbatim.

Each asset fetches first (no warehouse lock held during network calls), then writes every user's rows
and rejected records in one transaction (``warehouse.raw_store``). Records the source returns beyond the
requested days are kept too: AccessLink forgets after ~28 days, so whatever arrives is stored, and nothing
stored is deleted.
"""

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from polar_pipeline.accesslink import NotRegistered, ReauthorizationRequired
from polar_pipeline.ingest.streams import RAW_STREAMS, SOURCE, RawStream, to_raw_batch
from polar_pipeline.orchestration.partitions import partition_scope
from polar_pipeline.orchestration.resources import (
    DUCKDB_POOL,
    AccessLinkResource,
    ControlStoreResource,
    WarehouseResource,
)
from polar_pipeline.warehouse.raw_store import RawBatch, store_raw_batches
from polar_pipeline.warehouse.schema import RAW_TABLES

INGEST_GROUP = "ingest"


def raw_asset_key(stream: str) -> dg.AssetKey:
    """The asset that writes ``raw.<stream>`` (``raw_sleep`` …)."""
    return dg.AssetKey(f"raw_{stream}")


def build_raw_asset(spec: RawStream, partitions_def: dg.PartitionsDefinition[Any]) -> dg.AssetsDefinition:
    table = RAW_TABLES[spec.stream]

    @dg.asset(
        key=raw_asset_key(spec.stream),
        group_name=INGEST_GROUP,
        description=spec.description,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=DUCKDB_POOL,
        kinds={"duckdb", "python"},
        metadata={"table": table.qualified, "natural_key": f"(user_id, {table.key_column})"},
    )
    def raw_asset(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        accesslink: AccessLinkResource,
        control_store: ControlStoreResource,
    ) -> dg.MaterializeResult[Any]:
        scope = partition_scope(context)
        store = control_store.open()
        fetched: dict[str, RawBatch] = {}
        skipped: dict[str, str] = {}
        with accesslink.client() as client:
            for user_id in scope.users:
                try:
                    token = store.token_for(user_id)
                    result = spec.fetch(client, token, scope.first_day, scope.last_day)
                    fetched[user_id] = to_raw_batch(spec.stream, result)
                except ReauthorizationRequired:
                    store.set_status(user_id, "reauthorize")
                    skipped[user_id] = "token rejected (401): the user must re-authorize"
                except NotRegistered:
                    store.set_status(user_id, "not_registered")
                    skipped[user_id] = "not registered with AccessLink or consent missing (403)"
                except KeyError:
                    skipped[user_id] = "unknown user: add it with `polar-flow users add`"
        for user_id, reason in skipped.items():
            context.log.warning(f"{spec.stream}: skipped user {user_id}: {reason}")
        if not fetched:
            raise dg.Failure(f"{spec.stream}: no user could be fetched", metadata={"skipped": skipped})

        with warehouse.get_connection() as con:
            counts = store_raw_batches(con, spec.stream, fetched, source=SOURCE, fetched_at=datetime.now(UTC))
        context.log.info(
            f"{spec.stream}: {counts.received} records received, {counts.changed} new or changed, "
            f"{counts.quarantined} quarantined, {counts.requests} requests, users {len(fetched)}, "
            f"days {scope.first_day}..{scope.last_day}"
        )
        return dg.MaterializeResult(
            metadata={
                "records_received": counts.received,
                "rows_inserted_or_changed": counts.changed,
                "records_quarantined": counts.quarantined,
                "accesslink_requests": counts.requests,
                "users": len(fetched),
                "users_skipped": dg.MetadataValue.json(skipped),
                "first_day": scope.first_day.isoformat(),
                "last_day": scope.last_day.isoformat(),
            }
        )

    return raw_asset


def build_raw_assets(partitions_def: dg.PartitionsDefinition[Any]) -> list[dg.AssetsDefinition]:
    """One asset per AccessLink stream kept in ``raw.*``."""
    return [build_raw_asset(spec, partitions_def) for spec in RAW_STREAMS]
