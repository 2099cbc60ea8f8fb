"""Raw user × day assets: pull one AccessLink stream for the run's users and days, upsert it verbatim.

Each asset fetches first (no warehouse lock held during network calls), then writes every user's rows
and rejected records in one transaction. Records the source returns beyond the requested days are kept
too: AccessLink forgets after ~28 days, so whatever arrives is stored, and nothing stored is deleted.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

import dagster as dg

from polar_pipeline.accesslink import AccessLinkClient, NotRegistered, ReauthorizationRequired
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


class _Record(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def day(self) -> date: ...
    @property
    def payload(self) -> dict[str, Any]: ...


class _Rejected(Protocol):
    @property
    def stream(self) -> str: ...
    @property
    def day(self) -> date | None: ...
    @property
    def key(self) -> str | None: ...
    @property
    def payload(self) -> str: ...
    @property
    def reason(self) -> str: ...


class _Fetched(Protocol):
    @property
    def records(self) -> Sequence[_Record]: ...
    @property
    def rejected(self) -> Sequence[_Rejected]: ...
    @property
    def requests(self) -> int: ...


@dataclass(frozen=True)
class RawStream:
    """One AccessLink stream: its raw table and how the client fetches a date range of it."""

    stream: str
    description: str
    fetch: Callable[[AccessLinkClient, str, date, date], _Fetched]


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


def _as_raw(record: _Record) -> RawRecord:
    return RawRecord(
        key=record.key, day=record.day, payload_json=json.dumps(record.payload, ensure_ascii=False)
    )


def _as_quarantine(stream: str, rejected: _Rejected) -> QuarantineRecord:
    """Quarantine under the raw table's stream name, so quarantine rows join to ``raw.<stream>``."""
    return QuarantineRecord(
        stream=stream,
        day=rejected.day,
        key=rejected.key,
        payload=rejected.payload,
        reason=rejected.reason,
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
        fetched: dict[str, _Fetched] = {}
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

        now = datetime.now(UTC)
        changed = quarantined = received = requests = 0
        with warehouse.get_connection() as con, transaction(con):
            for user_id, result in fetched.items():
                received += len(result.records)
                requests += result.requests
                changed += upsert_raw_records(
                    con, table, user_id, [_as_raw(r) for r in result.records], source=SOURCE, fetched_at=now
                )
                quarantined += quarantine_records(
                    con, user_id, [_as_quarantine(spec.stream, r) for r in result.rejected], seen_at=now
                )
        context.log.info(
            f"{spec.stream}: {received} records received, {changed} new or changed, "
            f"{quarantined} quarantined, {requests} requests, users {len(fetched)}, "
            f"days {scope.first_day}..{scope.last_day}"
        )
        return dg.MaterializeResult(
            metadata={
                "records_received": received,
                "rows_inserted_or_changed": changed,
                "records_quarantined": quarantined,
                "accesslink_requests": requests,
                "users": len(fetched),
                "users_skipped": dg.MetadataValue.json(skipped),
                "first_day": scope.first_day.isoformat(),
                "last_day": scope.last_day.isoformat(),
            }
        )

    return raw_asset


raw_assets = [build_raw_asset(spec) for spec in RAW_STREAMS]
