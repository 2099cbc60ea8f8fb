"""Raw user × day assets: pull AccessLink streams for the run's users and days, upsert them verbatim.

One asset per entry of ``RAW_STREAMS``; an entry's companion streams (continuous heart rate and cardio load
ride with ``raw_activity``) are fetched and stored by the same asset, each in its own raw table, so they add
no Dagster partitions. Each asset fetches first (no warehouse lock held during network calls), then writes
each stream's rows and rejected records for every user in one transaction per stream
(``warehouse.raw_store``). Records the source returns beyond the requested days are kept too: AccessLink
forgets after ~28 days, so whatever arrives is stored, and nothing stored is deleted.

A stream that fails for a user (retries exhausted, an unexpected status) never costs the other streams their
rows: everything fetched is stored first. A failed companion is logged and reported in the
``stream_failures`` metadata and the next sync fetches it again; a failed main stream fails the asset, as
it always did, after the writes.
"""

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from polar_pipeline.accesslink import AccessLinkError, NotRegistered, ReauthorizationRequired
from polar_pipeline.ingest.streams import RAW_STREAMS, SOURCE, RawStream, asset_stream_of, to_raw_batch
from polar_pipeline.late_days import LateDays
from polar_pipeline.orchestration.ownership import OWNERS
from polar_pipeline.orchestration.partitions import partition_scope
from polar_pipeline.orchestration.resources import (
    DUCKDB_POOL,
    AccessLinkResource,
    ControlStoreResource,
    WarehouseResource,
)
from polar_pipeline.sqlmodels import ModelGraph, NewRejects, SqlModel, create_views, quarantine_rejects
from polar_pipeline.sync_outcomes import SyncAttempt, SyncOutcomes
from polar_pipeline.warehouse.check_failures import record_check_outcome
from polar_pipeline.warehouse.raw_counts import StoredCounts
from polar_pipeline.warehouse.raw_store import RawBatch, store_raw_batches
from polar_pipeline.warehouse.schema import RAW_TABLES
from polar_pipeline.warehouse.writer import transaction

INGEST_GROUP = "ingest"
ARRIVAL_CHECK = "records_pass_staging_checks"
_CheckedResult = dg.MaterializeResult
"""The unsubscripted class: Dagster recognises only it as the result of an asset that also reports checks."""


def _late_days(counts: dict[str, StoredCounts], first_day: date, last_day: date) -> dict[str, list[date]]:
    """Per user, the days outside the run whose records this run inserted or changed (sorted)."""
    late: dict[str, set[date]] = {}
    for stored in counts.values():
        for user_id, days in stored.changed_days.items():
            outside = {day for day in days if not first_day <= day <= last_day}
            if outside:
                late.setdefault(user_id, set()).update(outside)
    return {user_id: sorted(days) for user_id, days in late.items()}


def raw_asset_key(stream: str) -> dg.AssetKey:
    """The asset that writes ``raw.<stream>`` (``raw_sleep`` …; a companion's is its parent's)."""
    return dg.AssetKey(f"raw_{asset_stream_of(stream).stream}")


def _static_metadata(spec: RawStream) -> dict[str, Any]:
    table = RAW_TABLES[spec.stream]
    metadata: dict[str, Any] = {"table": table.qualified, "natural_key": f"(user_id, {table.key_column})"}
    if spec.companions:
        metadata["companion_tables"] = ", ".join(RAW_TABLES[c.stream].qualified for c in spec.companions)
    return metadata


def _description(spec: RawStream) -> str:
    return " ".join([spec.description, *(f"Also: {c.description}" for c in spec.companions)])


def arrival_views(graph: ModelGraph, spec: RawStream) -> list[SqlModel]:
    """The staging views that type and range-check the raw tables this asset writes."""
    tables = {member.stream for member in spec.streams}
    return [view for view in graph.views if any(source.table in tables for source in graph.sources_of(view))]


def _attempts(
    run_id: str,
    users: tuple[str, ...],
    skipped: dict[str, str],
    failures: dict[str, dict[str, str]],
    rejects: NewRejects | None,
) -> list[SyncAttempt]:
    """One outcome per user of the run: failed when skipped, a stream failed, or records came in bad."""
    attempts = []
    for user_id in users:
        problems = []
        if user_id in skipped:
            problems.append(skipped[user_id])
        problems += [
            f"{stream}: {by_user[user_id]}" for stream, by_user in failures.items() if user_id in by_user
        ]
        if rejects is not None and user_id in rejects.counts:
            problems.append(rejects.describe(user_id))
        attempts.append(SyncAttempt(user_id, run_id, not problems, "; ".join(problems) or None))
    return attempts


def build_raw_asset(
    spec: RawStream, partitions_def: dg.PartitionsDefinition[Any], graph: ModelGraph
) -> dg.AssetsDefinition:
    key = raw_asset_key(spec.stream)
    views = arrival_views(graph, spec)

    @dg.asset(
        key=key,
        group_name=INGEST_GROUP,
        description=_description(spec),
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=DUCKDB_POOL,
        kinds={"duckdb", "python"},
        owners=OWNERS[INGEST_GROUP],
        metadata=_static_metadata(spec),
        check_specs=[
            dg.AssetCheckSpec(
                ARRIVAL_CHECK,
                asset=key,
                blocking=True,
                description=(
                    "Blocking: no record of the run's users and days failed its staging checks (types and "
                    "plausible ranges: ln RMSSD 1.5-6.5, overnight HR 25-120 bpm, sleep <= 16 h, ANS charge "
                    "-10..+10, steps >= 0) unless it was quarantined before. A bad record is quarantined "
                    "with its reason and this run stops before the marts; the users it did not concern are "
                    "re-run at once and its user after a back-off (the sync_retries sensor), when the "
                    "record, now quarantined, no longer reaches the marts."
                ),
            )
        ],
    )
    def raw_asset(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        accesslink: AccessLinkResource,
        control_store: ControlStoreResource,
    ) -> _CheckedResult:  # type: ignore[type-arg]
        scope = partition_scope(context)
        store = control_store.open()
        fetched: dict[str, dict[str, RawBatch]] = {member.stream: {} for member in spec.streams}
        failures: dict[str, dict[str, str]] = {}
        skipped: dict[str, str] = {}
        with accesslink.client() as client:
            for user_id in scope.users:
                try:
                    token = store.token_for(user_id)
                    for member in spec.streams:
                        try:
                            result = member.fetch(client, token, scope.first_day, scope.last_day)
                        except (ReauthorizationRequired, NotRegistered):
                            raise
                        except AccessLinkError as error:
                            failures.setdefault(member.stream, {})[user_id] = (
                                f"{type(error).__name__}: {error}"
                            )
                            continue
                        fetched[member.stream][user_id] = to_raw_batch(member.stream, result)
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
        outcomes = SyncOutcomes(Path(control_store.path))
        if not any(fetched.values()) and not failures:
            attempts = _attempts(context.run.run_id, scope.users, skipped, failures, None)
            outcomes.record(attempts, datetime.now(UTC))
            raise dg.Failure(f"{spec.stream}: no user could be fetched", metadata={"skipped": skipped})

        counts: dict[str, StoredCounts] = {}
        fetched_at = datetime.now(UTC)
        with warehouse.get_connection() as con:
            for stream, batches in fetched.items():
                if batches:
                    counts[stream] = store_raw_batches(
                        con, stream, batches, source=SOURCE, fetched_at=fetched_at
                    )
            with transaction(con, f"{key.to_user_string()} arrival check"):
                create_views(con, graph)
                rejects = quarantine_rejects(con, views, scope, fetched_at)
                for stream, stored in counts.items():
                    rejects = rejects.including(stream, stored.first_quarantined)
                record_check_outcome(
                    con,
                    check_name=f"{key.to_user_string()}:{ARRIVAL_CHECK}",
                    asset=key.to_user_string(),
                    blocking=True,
                    failing_by_user=rejects.counts,
                    user_day_slice=scope,
                    evaluated_at=fetched_at,
                )
        outcomes.record(_attempts(context.run.run_id, scope.users, skipped, failures, rejects), fetched_at)
        late = _late_days(counts, scope.first_day, scope.last_day)
        if late:
            LateDays(Path(control_store.path)).record(late, fetched_at)
            for user_id, days in late.items():
                context.log.info(
                    f"{key.to_user_string()}: user {user_id}: records of {len(days)} day(s) outside the run "
                    f"({days[0]}..{days[-1]}) changed; the late_records sensor rebuilds them"
                )
        for user_id in rejects.counts:
            context.log.warning(f"{key.to_user_string()}: user {user_id}: {rejects.describe(user_id)}")
        arrival = dg.AssetCheckResult(
            check_name=ARRIVAL_CHECK,
            passed=not rejects.counts,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "failing_users": dg.MetadataValue.json(rejects.counts),
                "reasons": dg.MetadataValue.json(rejects.reasons),
                "first_day": scope.first_day.isoformat(),
                "last_day": scope.last_day.isoformat(),
            },
        )
        for stream, stored in counts.items():
            context.log.info(
                f"{stream}: {stored.received} records received, {stored.changed} new or changed, "
                f"{stored.quarantined} quarantined, {stored.requests} requests, users {len(stored.users)}, "
                f"days {scope.first_day}..{scope.last_day}"
            )
        for stream, by_user in failures.items():
            for user_id, message in by_user.items():
                context.log.error(f"{stream}: not fetched for user {user_id} (stored nothing new): {message}")
        metadata: dict[str, Any] = {
            "records_received": sum(stored.received for stored in counts.values()),
            "rows_inserted_or_changed": sum(stored.changed for stored in counts.values()),
            "records_quarantined": sum(stored.quarantined for stored in counts.values()),
            "accesslink_requests": sum(stored.requests for stored in counts.values()),
            "users": len({user for stored in counts.values() for user in stored.users}),
            "users_skipped": dg.MetadataValue.json(skipped),
            "streams": dg.MetadataValue.json(
                {
                    stream: {
                        "received": stored.received,
                        "changed": stored.changed,
                        "quarantined": stored.quarantined,
                        "requests": stored.requests,
                        "users": list(stored.users),
                    }
                    for stream, stored in counts.items()
                }
            ),
            "stream_failures": dg.MetadataValue.json(failures),
            "first_day": scope.first_day.isoformat(),
            "last_day": scope.last_day.isoformat(),
        }
        if spec.stream in failures:
            users = ", ".join(sorted(failures[spec.stream]))
            raise dg.Failure(
                f"{spec.stream}: fetch failed for user(s) {users}; every stream fetched was stored",
                metadata=metadata,
            )
        metadata["records_quarantined_on_arrival"] = sum(rejects.counts.values())
        return dg.MaterializeResult(metadata=metadata, check_results=[arrival])

    return raw_asset


def build_raw_assets(
    partitions_def: dg.PartitionsDefinition[Any], graph: ModelGraph
) -> list[dg.AssetsDefinition]:
    """One asset per entry of ``RAW_STREAMS`` (its companions included)."""
    return [build_raw_asset(spec, partitions_def, graph) for spec in RAW_STREAMS]
