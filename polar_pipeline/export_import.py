"""``polar-flow import``: a Polar account export into the warehouse, the days it touched rebuilt, published.

The export's records are stored like any other raw source (``polar_export.importer.stream_export``: a writer
transaction per raw stream, ``source = 'export'``). Then ONE run of ``pipeline_job`` rebuilds the marts and
the analytics for the user's imported days plus the trailing windows after them, without the raw ingest
assets: AccessLink serves only the last ~28 days, and a user who never connected AccessLink has no token to
fetch with. Such a user gets a ``users`` partition but no control-store row (no token is invented); the raw
assets of later syncs skip a user whose token they cannot find, so the user exists for the warehouse,
Dagster and the snapshot only. The archive itself is kept under ``$POLAR_HOME/imported/<user>/``.

Each phase (read and store, rebuild, publish) runs in a child process of its own, one after the other, and
this process loads none of the heavy libraries (Dagster, DuckDB, polars): what a phase's allocators keep
after years of JSON or 1,825 partitions goes back to the system when its child exits, so the import's peak
is its heaviest phase alone, not the phases stacked (issue: five years within 500 MB).
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from polar_pipeline import clock
from polar_pipeline.child_process import run_in_child
from polar_pipeline.settings import Settings

if TYPE_CHECKING:  # the heavy libraries are imported in the child processes only (see ``run_in_child``)
    import dagster as dg
    import duckdb
    from dagster._core.instance.ref import InstanceRef

    from polar_pipeline.polar_export.summary import ImportSummary
    from polar_pipeline.progress import EventListener

_Result = TypeVar("_Result")

IMPORTED_DIR = "imported"


@dataclass(frozen=True)
class RebuildOutcome:
    run_id: str
    success: bool
    first_day: date
    last_day: date


@dataclass(frozen=True)
class ExportImport:
    """Everything one import did, for the summary the CLI prints."""

    user_id: str
    files: dict[str, int]
    """Archive members per family (the skipped families included)."""
    stored: ImportSummary
    before_axis_days: int
    """Imported days before the day axis start: stored raw, but no partition rebuilds them."""
    axis_start: date
    new_partition: bool
    has_token: bool
    rebuild: RebuildOutcome | None
    published: bool | None
    generation: int | None
    """The serving snapshot generation this import's publish left in force (None: no publish ran)."""
    kept_at: Path
    sample_sessions: int = 0
    """Sessions whose series or route went to the sample store in this import (not those already there)."""
    sample_rows: dict[str, int] = field(default_factory=dict)
    """Rows per sample-store kind written by this import (a series or a route each)."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per phase: ``read and store``, ``rebuild``, ``publish``."""


def files_per_family(path: Path) -> dict[str, int]:
    """How many members of each family the archive holds (names only: nothing is parsed)."""
    from polar_pipeline.polar_export.archive import open_export
    from polar_pipeline.polar_export.importer import family_of

    with open_export(path) as archive:
        return dict(Counter(family_of(member.basename) for member in archive.members()))


def rebuild_user_days(
    settings: Settings,
    user_id: str,
    first_day: date,
    last_day: date,
    *,
    instance: dg.DagsterInstance,
    progress: EventListener | None = None,
) -> RebuildOutcome:
    """ONE run of ``pipeline_job`` over the user's days, the derived assets only (no AccessLink calls).

    DuckDB runs with the limits of ``settings``. ``import_export`` passes the import's limits
    (``Settings.for_import``: one thread and ``import_memory_limit``), which keep years of one user's days
    within the import's memory."""
    from polar_pipeline.definitions import build_definitions
    from polar_pipeline.defs.pipeline.definitions import PIPELINE_JOB
    from polar_pipeline.operations import (
        QUIET_RUN_CONFIG,
        announce_other_runs,
        process_tags,
        recover_abandoned_runs,
    )
    from polar_pipeline.orchestration.partitions import range_tags
    from polar_pipeline.progress import execute_watched
    from polar_pipeline.rebuilds import derived_asset_keys

    recover_abandoned_runs(instance)
    announce_other_runs(instance)
    job = build_definitions(settings).resolve_job_def(PIPELINE_JOB)
    subset = job.get_subset(asset_selection=set(derived_asset_keys(settings)))
    result = execute_watched(
        subset,
        instance=instance,
        listener=progress,
        run_config=QUIET_RUN_CONFIG,
        tags=range_tags(user_id, first_day, last_day) | process_tags(),
    )
    return RebuildOutcome(result.run_id, result.success, first_day, last_day)


def keep_archive(settings: Settings, user_id: str, path: Path, at: datetime) -> Path:
    """Keep the export at ``$POLAR_HOME/imported/<user>/<timestamp>-<name>`` (the samples stay in it)."""
    target = settings.home_dir / IMPORTED_DIR / user_id / f"{at:%Y%m%dT%H%M%SZ}-{path.name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        shutil.copytree(path, target)
    else:
        shutil.copy2(path, target)
    return target


@dataclass(frozen=True)
class StoredExport:
    """What reading and storing the export did: the raw records' summary and the sample store's share."""

    summary: ImportSummary
    sample_rows: dict[str, int]
    sample_sessions: int


def read_and_store(
    settings: Settings, user_id: str, path: Path, fetched_at: datetime
) -> tuple[dict[str, int], StoredExport]:
    """The archive's files per family, and its records stored, by a child process of its own.

    An error in the child (``ValueError``: not an export, raised before anything is written) is raised
    here."""
    return run_in_child(_read_and_store, settings, user_id, path, fetched_at)


def _read_and_store(
    settings: Settings, user_id: str, path: Path, fetched_at: datetime
) -> tuple[dict[str, int], StoredExport]:
    """In the child: the export's records into raw (a writer transaction per batch), its series into the
    sample store."""
    from polar_pipeline.polar_export.importer import stream_export
    from polar_pipeline.polar_export.samples import ExportSampleSink, commit_segments, known_export_samples
    from polar_pipeline.warehouse.schema import raw_writer

    files = files_per_family(path)  # a path that is no export fails here, before anything is written
    sink = ExportSampleSink(
        settings.samples_dir, user_id, fetched_at, known_export_samples(settings.samples_dir, user_id)
    )

    def writer() -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return raw_writer(
            settings.warehouse_path,
            memory_limit=settings.warehouse_memory_limit,
            threads=settings.warehouse_threads,
        )

    try:
        summary = stream_export(writer, user_id, path, fetched_at=fetched_at, samples=sink)
        sink.close()
        with writer() as con:
            sample_rows = commit_segments(con, sink)
    finally:
        sink.discard()  # whatever did not become a segment
    return files, StoredExport(summary, sample_rows, sink.sessions)


@dataclass(frozen=True)
class Registered:
    """What the rebuild's child found and did: the day axis, the user's partition and token, the run."""

    axis_start: date
    new_partition: bool
    has_token: bool
    rebuild: RebuildOutcome | None


def _open_instance(settings: Settings, ref: InstanceRef | None) -> dg.DagsterInstance:
    """The caller's Dagster instance by its ref (or the one on our DAGSTER_HOME), without compute-log capture.

    Capturing a run's stdout and stderr starts two ``tail`` processes and two Python watchers (about 25 MB)
    for the whole run. A child's stdout and stderr are its caller's anyway: the terminal of ``polar-flow
    import``, or the captured logs of the inbox's ``import_job`` run. The run's own events, logs included,
    are in the event log as for any run."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import ConfigurableClassData

    from polar_pipeline.orchestration.home import prepare_dagster_home

    if ref is None:
        ref = InstanceRef.from_dir(str(prepare_dagster_home(settings)))
    no_capture = ConfigurableClassData(
        "dagster._core.storage.noop_compute_log_manager", "NoOpComputeLogManager", "{}"
    )
    return dg.DagsterInstance.from_ref(ref._replace(compute_logs_data=no_capture))


def _register_and_rebuild(
    settings: Settings,
    user_id: str,
    stored: ImportSummary,
    instance_ref: InstanceRef | None,
    progress: bool | None,
) -> Registered:
    """In a child: the user's partition added if new, its token looked up, the imported days and the
    trailing windows after them rebuilt (those on the day axis, if any)."""
    from polar_pipeline.control_store import UnknownUser
    from polar_pipeline.history import history_start
    from polar_pipeline.operations import open_control_store
    from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME
    from polar_pipeline.progress import RunProgress, wanted
    from polar_pipeline.rebuilds import rebuild_range

    axis_start = history_start(settings)
    today = clock.today(settings)
    days = rebuild_range(stored.first_day, stored.last_day, axis_start=axis_start, today=today)
    instance = _open_instance(settings, instance_ref)
    new_partition = user_id not in instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)
    if new_partition:
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user_id])
    try:
        open_control_store(settings).get_user(user_id)  # a row there always holds a token
        has_token = True
    except UnknownUser:
        has_token = False
    rebuild = None
    if days is not None:
        listener = RunProgress() if wanted(progress) else None  # stderr is the caller's
        rebuild = rebuild_user_days(settings, user_id, *days, instance=instance, progress=listener)
    return Registered(axis_start, new_partition, has_token, rebuild)


def _publish(settings: Settings, instance_ref: InstanceRef | None) -> tuple[bool, int | None]:
    """In a child: one publish run; whether it worked, and the generation now served."""
    from polar_pipeline.operations import publish
    from polar_pipeline.warehouse.snapshot import read_pointer

    published = publish(settings, instance=_open_instance(settings, instance_ref))
    pointer = read_pointer(settings.snapshots_dir)
    return published, pointer.generation if pointer is not None else None


def import_export(
    settings: Settings,
    user_id: str,
    path: Path,
    *,
    publish_after: bool = True,
    instance: dg.DagsterInstance | None = None,
    progress: bool | None = False,
    on_phase: Callable[[str], None] | None = None,
) -> ExportImport:
    """Read, store, keep, rebuild and publish one export for ``user_id`` (``ValueError``: not an export).

    ``instance`` (a persistent one: the children open it by its ref) defaults to the one on our
    DAGSTER_HOME. ``progress`` prints a line per finished rebuild step on stderr (None: when stderr is a
    terminal). ``on_phase`` is told each phase's name (``read and store``, ``rebuild``, ``publish``) as it
    starts, in this process."""
    settings = settings.for_import()  # every phase with the import's DuckDB limits
    now = datetime.now(UTC)
    seconds: dict[str, float] = {}
    instance_ref = instance.get_ref() if instance is not None else None

    def phase(name: str, work: Callable[[], _Result]) -> _Result:
        if on_phase is not None:
            on_phase(name)
        started = time.perf_counter()
        try:
            return work()
        finally:
            seconds[name] = time.perf_counter() - started

    files, stored = phase("read and store", lambda: read_and_store(settings, user_id, path, now))
    kept_at = keep_archive(settings, user_id, path, now)
    summary = stored.summary
    registered = phase(
        "rebuild",
        lambda: run_in_child(_register_and_rebuild, settings, user_id, summary, instance_ref, progress),
    )
    rebuild = registered.rebuild
    published, generation = None, None
    if publish_after and (rebuild is None or rebuild.success):
        published, generation = phase("publish", lambda: run_in_child(_publish, settings, instance_ref))
    axis_start = registered.axis_start
    return ExportImport(
        user_id=user_id,
        files=files,
        stored=stored.summary,
        before_axis_days=len({day for day in stored.summary.days if day < axis_start}),
        axis_start=axis_start,
        new_partition=registered.new_partition,
        has_token=registered.has_token,
        rebuild=rebuild,
        published=published,
        generation=generation,
        kept_at=kept_at,
        sample_sessions=stored.sample_sessions,
        sample_rows=stored.sample_rows,
        seconds=seconds,
    )


def summary_lines(done: ExportImport) -> list[str]:
    """What the CLI prints: per family, per stream, the days, the run and the snapshot."""
    stored = done.stored
    lines = [f"import for user {done.user_id}"]
    lines.append(
        "files read: " + ", ".join(f"{family} {count}" for family, count in sorted(done.files.items()))
    )
    for stream, counts in stored.stored.items():
        lines.append(
            f"  {stream}: {counts.received} records, {counts.changed} added or changed, "
            f"{counts.received - counts.changed} already present (unchanged), "
            f"{counts.quarantined} quarantined"
        )
    skipped = ", ".join(f"{family} {count}" for family, count in sorted(stored.skipped.items()))
    lines.append(f"skipped families (not imported): {skipped or 'none'}")
    if done.sample_rows:
        kinds = ", ".join(f"{kind} {rows}" for kind, rows in sorted(done.sample_rows.items()))
        lines.append(f"sample store: {done.sample_sessions} session(s) added ({kinds} rows)")
    if stored.first_day is None:
        lines.append("days covered: none (the export holds no sessions, activity, sleep or recharge)")
    else:
        lines.append(f"days covered: {stored.first_day}..{stored.last_day}")
    if done.before_axis_days:
        lines.append(
            f"{done.before_axis_days} imported day(s) lie before the day axis start {done.axis_start}: "
            "stored raw but not in the marts; set POLAR_HISTORY_START earlier (then `polar-flow backfill`) "
            "to bring them in"
        )
    if done.new_partition:
        lines.append(f"user {done.user_id} added to the Dagster users partitions")
    if not done.has_token:
        lines.append(
            f"user {done.user_id} has not connected AccessLink (no token): syncs skip its raw fetch; "
            "its data comes from imports only"
        )
    if done.rebuild is None:
        lines.append("rebuild: nothing to rebuild (no imported day on the day axis)")
    else:
        run = done.rebuild
        lines.append(
            f"rebuild run {run.run_id}: {'success' if run.success else 'FAILED'} "
            f"days {run.first_day}..{run.last_day} (marts + analytics)"
        )
    if done.published is None:
        failed = done.rebuild is not None and not done.rebuild.success
        lines.append("not published" + (" (the rebuild failed)" if failed else ""))
    else:
        lines.append(
            f"published serving snapshot generation {done.generation}" if done.published else "publish FAILED"
        )
    lines.append(f"export kept at {done.kept_at}")
    if done.seconds:
        phases = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in done.seconds.items())
        lines.append(f"took {sum(done.seconds.values()):.1f} s ({phases})")
    return lines
