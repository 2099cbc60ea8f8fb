"""Deleting a user completely: AccessLink registration, every warehouse row, samples, control store, Dagster.

``delete_user`` goes in this order, so that a failure leaves a state that running it again finishes:

1. Refuse while a run other than a publish is in progress: its steps could write the user's rows again
   after they are deleted.
2. De-register the user at AccessLink with their token (``DELETE /v3/users/{polar_user_id}``); 204, 404,
   401 and 403 all mean AccessLink no longer serves them to us. Any other failure stops here, before
   anything is deleted, unless ``deregister=False``.
3. The control store: every row with their ``user_id`` (the user and token, API keys, sync requests, and
   any table added later) and, in the rate-limit file, the counters of their keys. First, so that the sync
   sensor can neither start a queued request of theirs nor add their partition back.
4. Their ``users`` dynamic partition in Dagster: no new run can select them.
5. The warehouse, through the single writer (``warehouse/erasure.py``): every base table with a
   ``user_id`` column, found in the catalog, in one transaction, and the sample segments that hold them,
   rewritten without them.
6. Dagster's history of them: every run that worked on their partitions, with its events and compute
   logs (``DagsterInstance.delete_run``). Dagster has no public way to delete one partition's events
   (``wipe_asset_partitions`` raises ``NotImplementedError`` on the SQLite and PostgreSQL storages), so a run
   that also covered other users goes whole: their data stays, only Dagster's record of that run goes.
7. A new serving snapshot, then every older generation is unlinked (they still hold the user); a reader
   that has one open keeps it until it closes it, as after any publish.

Nothing here names a table: a table added later with a ``user_id`` column, in the warehouse or the control
store, is deleted from too.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from polar_pipeline.accesslink import AccessLinkError, NotRegistered, ReauthorizationRequired
from polar_pipeline.api_keys import ApiKeyStore
from polar_pipeline.connections import accesslink_client, open_control_store
from polar_pipeline.control_store import StoredUser, UnknownUser, delete_matching_rows, validate_user_id
from polar_pipeline.defs.requests.sensors import IN_PROGRESS
from polar_pipeline.defs.serving.sensors import PUBLISH_JOB
from polar_pipeline.failures import OperationFailed
from polar_pipeline.operations import PID_TAG, publish, recover_abandoned_runs
from polar_pipeline.orchestration.home import dagster_instance
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME
from polar_pipeline.settings import Settings
from polar_pipeline.sync_requests import SyncRequestQueue
from polar_pipeline.warehouse.erasure import erase_user, quoted, user_tables
from polar_pipeline.warehouse.snapshot import GENERATION_PATTERN, read_pointer, remove_generations_before
from polar_pipeline.warehouse.writer import connect_writer

PARTITION_TAGS = frozenset(
    {"dagster/partition", "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"}
)
"""Run tags that name the partitions a run works on (one partition, or the two ends of a range)."""
DEREGISTER_TIMEOUT_SECONDS = 15.0
DEREGISTER_RETRIES = 2


class UserDeletionError(OperationFailed):
    """The deletion did not start or did not finish; the message says what to do."""


class RunInProgress(UserDeletionError):
    """A run that may write the user's rows is in progress: nothing was deleted."""


class DeregistrationFailed(UserDeletionError):
    """AccessLink could not be asked to forget the user: nothing was deleted."""


class DeletionIncomplete(UserDeletionError):
    """Deleted from the warehouse, but a later step failed: running the deletion again finishes it."""


@dataclass(frozen=True)
class DeletionReport:
    """What ``delete_user`` removed, per place; ``warehouse_rows`` lists every user table, zeros included."""

    user_id: str
    accesslink: str
    control_rows: dict[str, int]
    rate_limit_rows: dict[str, int]
    partition_deleted: bool
    warehouse_rows: dict[str, int]
    sample_rows: dict[str, int]
    runs_deleted: tuple[str, ...]
    shared_runs_deleted: tuple[str, ...]
    published_generation: int | None
    generations_removed: tuple[int, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def found_anything(self) -> bool:
        return bool(
            sum(self.control_rows.values())
            or sum(self.warehouse_rows.values())
            or sum(self.sample_rows.values())
            or self.partition_deleted
            or self.runs_deleted
        )

    def describe(self) -> str:
        """Lines for the CLI: what went, where, and anything that needs a person's attention."""
        lines = [
            f"Deleted user {self.user_id}." if self.found_anything else f"Nothing left of {self.user_id}."
        ]
        lines.append(f"  AccessLink: {self.accesslink}")
        warehouse_total = sum(self.warehouse_rows.values())
        lines.append(
            f"  warehouse: {warehouse_total} row(s) from "
            f"{sum(1 for n in self.warehouse_rows.values() if n)} of {len(self.warehouse_rows)} user tables"
        )
        lines += [f"    {table}: {count}" for table, count in self.warehouse_rows.items() if count]
        lines.append(
            f"  sample store: {sum(self.sample_rows.values())} row(s) from {len(self.sample_rows)} "
            "segment(s), rewritten without them"
        )
        lines += [f"    {segment}: {count}" for segment, count in self.sample_rows.items()]
        control = ", ".join(f"{table} {count}" for table, count in self.control_rows.items() if count)
        lines.append(f"  control store: {control or 'no rows'}")
        limits = sum(self.rate_limit_rows.values())
        lines.append(f"  rate-limit counters: {limits}")
        lines.append(
            "  Dagster: "
            + ("users partition removed" if self.partition_deleted else "no users partition")
            + f"; {len(self.runs_deleted)} run(s) deleted with their events and logs"
            + (
                f" ({len(self.shared_runs_deleted)} also covered other users: Dagster's record of those "
                "runs is gone for them too, their data is not)"
                if self.shared_runs_deleted
                else ""
            )
        )
        if self.published_generation is None:
            lines.append("  serving snapshot: no generation held them, none published")
        else:
            removed = ", ".join(str(g) for g in self.generations_removed) or "none"
            lines.append(
                f"  serving snapshot: generation {self.published_generation} published; older generations "
                f"removed: {removed}"
            )
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def confirmation_prompt(settings: Settings, user_id: str) -> str:
    """What ``polar-flow users delete`` asks before deleting (the CLI adds ``[y/N]``)."""
    store = open_control_store(settings)
    try:
        stored: StoredUser | None = store.get_user(user_id)
    except UnknownUser:
        stored = None
    keys = len(ApiKeyStore(settings.control_store_path).list(user_id))
    requests = len(SyncRequestQueue(settings.control_store_path).latest(user_id, limit=1_000_000))
    polar = (
        f"de-registers them at Polar AccessLink (Polar user {stored.polar_user_id}), then "
        if stored is not None and stored.polar_user_id is not None
        else ""
    )
    unknown = (
        f"User {user_id} is not in the control store (never connected, or already deleted). "
        if stored is None
        else ""
    )
    return unknown + (
        f"Delete user {user_id} for good? This {polar}deletes all their data from {settings.home_dir}: "
        f"every warehouse table, the sample store, the serving snapshots, their token, {keys} API key(s), "
        f"{requests} sync request(s), and their Dagster partition and runs. Backups are not touched. "
        "This cannot be undone."
    )


def delete_user(
    settings: Settings,
    user_id: str,
    *,
    deregister: bool = True,
    instance: dg.DagsterInstance | None = None,
) -> DeletionReport:
    """Delete ``user_id`` everywhere this home keeps them (see the module docstring for the order)."""
    validate_user_id(user_id)
    started = datetime.now(UTC)
    own_instance = instance is None
    instance = instance or dagster_instance(settings)
    try:
        _refuse_while_running(instance)
        store = open_control_store(settings)
        try:
            stored: StoredUser | None = store.get_user(user_id)
        except UnknownUser:
            stored = None
        accesslink = _deregister(settings, user_id, stored) if deregister else "not asked (deregister=False)"

        key_ids = [key.key_id for key in ApiKeyStore(settings.control_store_path).list(user_id)]
        matches: Mapping[str, list[str]] = {"user_id": [user_id], "key_id": key_ids}
        control_rows = delete_matching_rows(settings.control_store_path, matches)
        rate_limit_rows = delete_matching_rows(settings.rate_limit_path, matches)
        partition_deleted = user_id in instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)
        instance.delete_dynamic_partition(USERS_PARTITIONS_NAME, user_id)

        warehouse_rows: dict[str, int] = {}
        sample_rows: dict[str, int] = {}
        dirty_generation = 0
        if settings.warehouse_path.exists():
            con = connect_writer(settings.warehouse_path)
            try:
                erased = erase_user(con, user_id, settings.samples_dir)
                # Under the lock no publish runs, so every generation up to here may hold them.
                dirty_generation = _newest_generation(settings.snapshots_dir)
            finally:
                con.close()
            warehouse_rows = erased.tables
            sample_rows = {
                path.relative_to(settings.home_dir).as_posix(): count
                for path, count in erased.segments.items()
            }

        runs, shared = _delete_runs_of(instance, user_id)

        published: int | None = None
        removed: list[int] = []
        # A generation holds them when the warehouse did just now, or when an earlier deletion stopped
        # before its publish (then only the snapshot files still know them).
        if dirty_generation and (
            sum(warehouse_rows.values())
            or sum(sample_rows.values())
            or _generations_holding(settings.snapshots_dir, user_id)
        ):
            if not publish(settings, instance=instance):
                raise DeletionIncomplete(
                    f"user {user_id} is deleted from the warehouse, the control store and Dagster, but "
                    "publishing a new serving snapshot failed, so the current snapshot still holds their "
                    "rows: see the publish run's log, then run the deletion again to finish"
                )
            pointer = read_pointer(settings.snapshots_dir)
            published = pointer.generation if pointer else None
            if published is not None and published > dirty_generation:
                removed = remove_generations_before(settings.snapshots_dir, dirty_generation + 1)

        warnings = _after_the_fact(instance, user_id, started)
        if stored is not None and stored.polar_user_id is None and deregister:
            warnings.append(
                "no Polar user id was stored for them, so AccessLink was not asked to forget them: they can "
                "revoke this client's access in their Polar account"
            )
        return DeletionReport(
            user_id=user_id,
            accesslink=accesslink,
            control_rows=control_rows,
            rate_limit_rows=rate_limit_rows,
            partition_deleted=partition_deleted,
            warehouse_rows=warehouse_rows,
            sample_rows=sample_rows,
            runs_deleted=tuple(runs),
            shared_runs_deleted=tuple(shared),
            published_generation=published,
            generations_removed=tuple(removed),
            warnings=tuple(warnings),
        )
    finally:
        if own_instance:
            instance.dispose()


def _refuse_while_running(instance: dg.DagsterInstance) -> None:
    recover_abandoned_runs(instance)
    busy = [
        record.dagster_run
        for record in instance.get_run_records(filters=dg.RunsFilter(statuses=list(IN_PROGRESS)))
        if record.dagster_run.job_name != PUBLISH_JOB
    ]
    if busy:
        runs = ", ".join(
            f"{run.run_id[:8]} ({run.job_name}, {run.status.value}, pid {run.tags.get(PID_TAG, '?')})"
            for run in busy
        )
        raise RunInProgress(
            f"not deleting while a run is in progress ({runs}): its steps could write the user's rows again. "
            "Nothing was deleted; try again when it has finished."
        )


def _deregister(settings: Settings, user_id: str, stored: StoredUser | None) -> str:
    """Ask AccessLink to forget the user; what happened, or ``DeregistrationFailed`` (nothing deleted)."""
    if stored is None:
        return "not asked: no token stored for them (never connected, or deleted before)"
    if stored.polar_user_id is None:
        return "not asked: no Polar user id stored for them"
    try:
        token = open_control_store(settings).token_for(user_id)
    except RuntimeError as error:
        raise DeregistrationFailed(
            f"{error}: AccessLink cannot be asked to forget user {user_id}. Nothing was deleted; delete "
            "without de-registering (deregister=False) if they have revoked the access themselves."
        ) from None
    try:
        with accesslink_client(
            settings, timeout=DEREGISTER_TIMEOUT_SECONDS, max_retries=DEREGISTER_RETRIES
        ) as client:
            client.deregister_user(token, stored.polar_user_id)
    except ReauthorizationRequired:
        return f"already gone (401: the token of Polar user {stored.polar_user_id} is revoked)"
    except NotRegistered:
        return f"already gone (403: Polar user {stored.polar_user_id} is not registered with this client)"
    except AccessLinkError as error:
        raise DeregistrationFailed(
            f"could not de-register user {user_id} (Polar user {stored.polar_user_id}) at AccessLink: "
            f"{error}. Nothing was deleted; try again later, or delete without de-registering "
            "(deregister=False)."
        ) from None
    return f"de-registered (Polar user {stored.polar_user_id}; their token is revoked)"


def _names_user(value: str, user_id: str) -> bool:
    """A tag value or partition key that is the user or names them (``day|user`` keys, ranges' ends)."""
    return user_id in value.split("|")


def _delete_runs_of(instance: dg.DagsterInstance, user_id: str) -> tuple[list[str], list[str]]:
    """Delete every run that worked on the user: (all deleted run ids, those that also covered others).

    A run is the user's when a tag names them (a single partition, a range's end, a sync request's user)
    or when it materialized one of their partitions (a range with them in the middle names them nowhere
    else). It is theirs alone when every partition tag it has names them.
    """
    run_ids: set[str] = set()
    for asset_key in instance.get_asset_keys():
        theirs = [key for key in instance.get_materialized_partitions(asset_key) if _names_user(key, user_id)]
        if not theirs:
            continue
        cursor: str | None = None
        while True:
            result = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=theirs), limit=1000, cursor=cursor
            )
            run_ids.update(record.run_id for record in result.records)
            if not result.has_more:
                break
            cursor = result.cursor
    alone: list[str] = []
    shared: list[str] = []
    for record in instance.get_run_records():
        run = record.dagster_run
        tagged = [value for value in run.tags.values() if _names_user(value, user_id)]
        if not tagged and run.run_id not in run_ids:
            continue
        partition_tags = [value for key, value in run.tags.items() if key in PARTITION_TAGS]
        (alone if partition_tags and all(_names_user(v, user_id) for v in partition_tags) else shared).append(
            run.run_id
        )
    for run_id in alone + shared:
        instance.delete_run(run_id)
        with suppress(NotImplementedError):  # a log manager that cannot delete: nothing else to try
            instance.compute_log_manager.delete_logs(prefix=[run_id])
    return alone + shared, shared


def _newest_generation(snapshots_dir: Path) -> int:
    """The highest generation on disk or in the pointer (a killed publish may leave a file past it)."""
    found = [
        int(match.group(1))
        for entry in (snapshots_dir.iterdir() if snapshots_dir.is_dir() else [])
        if (match := GENERATION_PATTERN.match(entry.name))
    ]
    pointer = read_pointer(snapshots_dir) if snapshots_dir.is_dir() else None
    return max([*found, pointer.generation if pointer else 0])


def _generations_holding(snapshots_dir: Path, user_id: str) -> list[int]:
    """The generations on disk with a row of ``user_id`` in one of their tables with a ``user_id`` column."""
    holding = []
    for entry in sorted(snapshots_dir.iterdir()) if snapshots_dir.is_dir() else []:
        match = GENERATION_PATTERN.match(entry.name)
        if match is None:
            continue
        try:
            con = duckdb.connect(str(entry), read_only=True)
        except (duckdb.IOException, FileNotFoundError):
            continue  # unlinked by a publish meanwhile
        try:
            if any(
                con.execute(
                    f"SELECT count(*) FROM {quoted(table)} WHERE CAST(user_id AS VARCHAR) = ?", [user_id]
                ).fetchall()[0][0]
                for table in user_tables(con)
            ):
                holding.append(int(match.group(1)))
        finally:
            con.close()
    return holding


def _after_the_fact(instance: dg.DagsterInstance, user_id: str, started: datetime) -> list[str]:
    """Things that happened while the deletion ran and may have brought the user back."""
    warnings = []
    if user_id in instance.get_dynamic_partitions(USERS_PARTITIONS_NAME):
        warnings.append(
            f"the users partition {user_id} was added again meanwhile (a new connection?): delete again"
        )
    later = [
        record.dagster_run.run_id[:8]
        for record in instance.get_run_records(filters=dg.RunsFilter(created_after=started))
        if record.dagster_run.job_name != PUBLISH_JOB
    ]
    if later:
        warnings.append(
            f"run(s) {', '.join(later)} started while deleting and may have written their rows again: "
            "run the deletion again once they have finished"
        )
    return warnings
