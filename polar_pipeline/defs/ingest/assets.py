"""Raw user × day assets: pull one AccessLink stream for the run's users and days, upsert it verbatim.

Each asset fetches first (no warehouse lock held during network calls), then writes every user's rows
and rejected records in one transaction. Records the source returns beyond the requested days are kept
too: AccessLink forgets after ~28 days, so whatever arrives is stored, and nothing stored is deleted.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import duckdb

from polar_pipeline.accesslink import AccessLinkClient, FetchResult, NotRegistered, ReauthorizationRequired
from polar_pipeline.partitions import partition_scope, user_day_partitions
from polar_pipeline.resources import DUCKDB_POOL, AccessLinkResource, ControlStoreResource, WarehouseResource
from polar_pipeline.warehouse import (
    RAW_TABLES,
    QuarantineRecord,
    RawRecord,
    quarantine_records,
    transaction,
    upsert_raw_records,
)

SOURCE = "accesslink"


@dataclass(frozen=True)
class RawStream:
    """One AccessLink stream: its raw table and how the client fetches a date range of it."""

    stream: str
    description: str
    fetch: Callable[[AccessLinkClient, str, date, date], FetchResult[Any]]


RAW_STREAMS: tuple[RawStream, ...] = (
    RawStream(
        "sleep",
        "Nightly sleep from AccessLink (/v3/users/sleep), one row per user and wake-up day, payload kept.",
        lambda client, token, first, last: client.fetch_sleep(token, first, last),
    ),
    RawStream(
        "nightly_recharge",
        "Nightly Recharge (overnight HRV, ANS charge) from AccessLink, one row per user and wake-up day.",
        lambda client, token, first, last: client.fetch_nightly_recharge(token, first, last),
    ),
    RawStream(
        "activity",
        "Daily activity summaries from AccessLink (/v3/users/activities), one row per user and local day.",
        lambda client, token, first, last: client.fetch_activity(token, first, last),
    ),
    RawStream(
        "exercises",
        "Workouts from AccessLink (/v3/exercises) with zones and samples, one row per user and exercise id.",
        lambda client, token, first, last: client.fetch_exercises(token, first, last),
    ),
)


@dataclass(frozen=True)
class StoredCounts:
    """What one write of fetched results did to the warehouse."""

    received: int
    changed: int
    quarantined: int
    requests: int


def store_fetched(
    con: duckdb.DuckDBPyConnection,
    stream: str,
    fetched: Mapping[str, FetchResult[Any]],
    *,
    fetched_at: datetime,
) -> StoredCounts:
    """Upsert every user's records and quarantine their rejects, in ONE transaction.

    Rejects are quarantined under the raw table's stream name so quarantine rows join to ``raw.<stream>``.
    """
    table = RAW_TABLES[stream]
    changed = quarantined = 0
    with transaction(con):
        for user_id, result in fetched.items():
            records = [
                RawRecord(key=r.key, day=r.day, payload_json=json.dumps(r.payload, ensure_ascii=False))
                for r in result.records
            ]
            changed += upsert_raw_records(con, table, user_id, records, source=SOURCE, fetched_at=fetched_at)
            rejects = [QuarantineRecord(stream, r.day, r.key, r.payload, r.reason) for r in result.rejected]
            quarantined += quarantine_records(con, user_id, rejects, seen_at=fetched_at)
    return StoredCounts(
        received=sum(len(r.records) for r in fetched.values()),
        changed=changed,
        quarantined=quarantined,
        requests=sum(r.requests for r in fetched.values()),
    )


def build_raw_asset(spec: RawStream) -> dg.AssetsDefinition:
    table = RAW_TABLES[spec.stream]

    @dg.asset(
        name=f"raw_{spec.stream}",
        group_name="ingest",
        description=spec.description,
        partitions_def=user_day_partitions,
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
        fetched: dict[str, FetchResult[Any]] = {}
        skipped: dict[str, str] = {}
        with accesslink.client() as client:
            for user_id in scope.users:
                try:
                    token = store.token_for(user_id)
                    fetched[user_id] = spec.fetch(client, token, scope.first_day, scope.last_day)
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
            counts = store_fetched(con, spec.stream, fetched, fetched_at=datetime.now(UTC))
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


raw_assets = [build_raw_asset(spec) for spec in RAW_STREAMS]
