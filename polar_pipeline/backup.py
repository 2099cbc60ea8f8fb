"""Backing up everything under POLAR_HOME (and DAGSTER_HOME) while the pipeline runs, and restoring it.

A backup is a folder: ``home/`` mirrors POLAR_HOME, ``dagster/`` mirrors DAGSTER_HOME, and ``manifest.json``
lists every file with its size, mode and SHA-256. It is written under a hidden temporary name beside the
target, the manifest last, and renamed to the target only when complete: a folder without a manifest is
not a backup.

How each part is copied consistently without stopping the pipeline for long:

* ``warehouse.duckdb``: DuckDB lets one process open the file while it writes, so a byte copy is only
  consistent while nobody writes. The backup takes the writer's place (``connect_writer``, which waits for
  a run's step to finish: runs hold the warehouse one step at a time), checkpoints, copies the file, and
  lets go; steps that want the warehouse meanwhile wait, as they wait for each other.
* ``serving/``: copied under the same hold, since only a writer publishes and prunes generations. Their
  files never change once renamed into place.
* ``samples/``: the segments the copied warehouse records in ``raw.sample_segments``, after the hold.
  Segments are written once and never changed in place (an erasure replaces one by rename), so copying
  them later gives the files the copied warehouse names; a segment published since is left out, as the
  copied warehouse does not know it.
* SQLite files (``control.sqlite3``, ``ratelimit.sqlite3``, Dagster's run, event and schedule storage):
  SQLite's online backup API, a consistent copy of each file while others keep writing it.
* Dagster's compute logs (``storage/``: the captured stdout and stderr of steps, whose log lines the event
  log keeps anyway) are left out, and so are its telemetry and UI state files.
* ``secret.key`` is included unless ``include_key=False``: whoever holds the backup can then decrypt the
  users' Polar tokens. Everything else under POLAR_HOME is copied byte for byte.

Files are copied, never hard-linked: a backup must not share its blocks with the files it protects. Run a
backup in a process of its own (the CLI does): DuckDB shares one database among the connections of a
process, so inside a process that writes the warehouse its lock keeps nobody out.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg
import duckdb

from polar_pipeline.connections import open_control_store
from polar_pipeline.defs.requests.sensors import IN_PROGRESS
from polar_pipeline.failures import OperationFailed
from polar_pipeline.migrate import LAYOUT_VERSION, Migration, layout_version, migrate_home
from polar_pipeline.operations import PID_TAG
from polar_pipeline.orchestration.home import MARKER, prepare_dagster_home
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.pause import pause_point
from polar_pipeline.warehouse.samples import STATE_TABLE
from polar_pipeline.warehouse.snapshot import read_pointer
from polar_pipeline.warehouse.writer import connect_writer

BACKUP_FORMAT = 1
MANIFEST_NAME = "manifest.json"
HOME_PART, DAGSTER_PART = "home", "dagster"
SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""A SQLite file's companions: what the backup API reads through, never copied themselves."""
DAGSTER_LEFT_OUT = {
    "storage": "Dagster's compute logs (the steps' captured stdout and stderr; the event log keeps their "
    "log lines)",
    ".telemetry": "Dagster's telemetry state",
    ".nux": "Dagster's UI onboarding state",
    "logs": "Dagster's daemon logs",
}
BEFORE_RESTORE = "before-restore"
"""Names what a restore moves aside: ``<home>.before-restore-<time>`` beside it, or inside it."""
CHUNK = 1 << 20
WAREHOUSE_PAUSE = "backup:warehouse-copying"
"""Test seam: passed once the warehouse copy has begun, while the backup holds the warehouse."""


class BackupError(OperationFailed):
    """A backup could not be made; nothing was left at the target."""


class BackupCorrupt(BackupError):
    """The backup is incomplete or a file differs from its manifest; ``problems`` names each file."""

    def __init__(self, source: Path, problems: list[str]) -> None:
        super().__init__(
            f"the backup {source} cannot be restored: " + "; ".join(problems) + ". Nothing was changed."
        )
        self.problems = problems


class RestoreRefused(BackupError):
    """The home is in use (the warehouse is locked, a run is in progress) or cannot take the backup."""


@dataclass(frozen=True)
class FileEntry:
    path: str
    """Inside the backup, POSIX: ``home/…`` or ``dagster/…``."""
    size: int
    sha256: str
    mode: int


@dataclass(frozen=True)
class BackupReport:
    target: Path
    files: int
    bytes: int
    warehouse_hold_seconds: float
    key: str
    left_out: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        lines = [f"Backed up to {self.target}: {self.files} files, {self.bytes / 1e6:.1f} MB."]
        lines.append(
            f"  warehouse: held for {self.warehouse_hold_seconds:.2f} s (checkpoint and copy as its writer)"
        )
        lines.append(f"  encryption key: {self.key}")
        lines += [f"  left out: {item}" for item in self.left_out]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class RestoreReport:
    source: Path
    home: Path
    dagster_home: Path
    moved_aside: tuple[Path, ...]
    files: int
    key: str
    runs_marked_failed: tuple[str, ...]
    republished: int | None
    migration: Migration
    warnings: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        lines = [
            f"Restored {self.source} ({self.files} files) into {self.home} (Dagster: {self.dagster_home})."
        ]
        if self.moved_aside:
            lines += [
                f"  previous content kept at {path}: delete it once the restored home works"
                for path in self.moved_aside
            ]
        else:
            lines.append("  the home was empty: nothing moved aside")
        lines.append(f"  encryption key: {self.key}")
        if self.runs_marked_failed:
            lines.append(
                "  runs in progress when the backup was taken, now marked failed: "
                + ", ".join(run_id[:8] for run_id in self.runs_marked_failed)
            )
        if self.republished is not None:
            lines.append(
                f"  serving snapshot: republished as generation {self.republished} (its sample views name "
                "the sample store by path, and the home moved)"
            )
        if self.migration.from_version < LAYOUT_VERSION:
            lines.append(f"  layout: migrated from version {self.migration.from_version}")
        lines += [f"  warning: {warning}" for warning in self.warnings]
        lines.append("  start the API and `polar-flow dev` again now (they must not run during a restore)")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ backup


def backup(settings: Settings, target: Path, *, include_key: bool = True) -> BackupReport:
    """Copy POLAR_HOME and DAGSTER_HOME to ``target`` (new or empty), consistently, while runs go on."""
    target = target.expanduser().resolve()
    home, dagster_home = settings.home_dir, settings.dagster_home
    for inside in (home, dagster_home):
        if target == inside or target.is_relative_to(inside):
            raise BackupError(f"the backup target {target} is inside {inside}: put backups somewhere else")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"the backup target {target} exists and is not an empty folder")
    if not home.is_dir():
        raise BackupError(f"there is no POLAR_HOME at {home} to back up")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    partial.mkdir(mode=0o700)
    try:
        writer = _BackupWriter(partial)
        hold_seconds, segments, generation = _copy_warehouse_and_snapshots(settings, writer)
        _copy_segments(settings, writer, segments)
        left_out, warnings = _copy_rest_of_home(settings, writer, include_key=include_key)
        dagster_left_out, dagster_warnings = _copy_dagster_home(settings, writer)
        key = _key_description(settings, include_key)
        manifest = {
            "format": BACKUP_FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": {
                "polar-flow-pipeline": _version("polar-flow-pipeline"),
                "duckdb": duckdb.__version__,
                "dagster": dg.__version__,
            },
            "layout_version": layout_version(settings),
            "source_home": str(home),
            "source_dagster_home": str(dagster_home),
            "includes_key": any(
                entry.path == _in_home(settings, settings.key_file) for entry in writer.entries
            ),
            "snapshot_generation": generation,
            "warehouse_hold_seconds": round(hold_seconds, 3),
            "left_out": left_out + dagster_left_out,
            "files": [asdict(entry) for entry in writer.entries],
        }
        _write_durably(partial / MANIFEST_NAME, json.dumps(manifest, indent=1).encode())
        _fsync_dir(partial)
        if target.exists():
            target.rmdir()  # empty, checked above
        os.rename(partial, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return BackupReport(
        target=target,
        files=len(writer.entries),
        bytes=sum(entry.size for entry in writer.entries),
        warehouse_hold_seconds=hold_seconds,
        key=key,
        left_out=tuple(left_out + dagster_left_out),
        warnings=tuple(warnings + dagster_warnings),
    )


class _BackupWriter:
    """Writes files into the backup folder and keeps their manifest entries."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: list[FileEntry] = []

    def _destination(self, relative: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def copy(self, source: Path, relative: str, *, pause_at: str = "") -> None:
        mode = source.stat().st_mode & 0o777
        size, digest = _copy_hashing(source, self._destination(relative), mode, pause_at=pause_at)
        self.entries.append(FileEntry(relative, size, digest, mode))

    def sqlite(self, source: Path, relative: str) -> None:
        """A consistent copy of a live SQLite file (the online backup API, in one step)."""
        destination = self._destination(relative)
        mode = source.stat().st_mode & 0o777
        src = sqlite3.connect(source, timeout=30)
        try:
            dst = sqlite3.connect(destination)
            try:
                src.backup(dst)
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                dst.close()
        finally:
            src.close()
        for suffix in SQLITE_COMPANIONS:  # a clean close leaves none; a copy must be one file
            Path(f"{destination}{suffix}").unlink(missing_ok=True)
        destination.chmod(mode)
        _fsync_file(destination)
        size, digest = _hash_file(destination)
        self.entries.append(FileEntry(relative, size, digest, mode))


def _copy_warehouse_and_snapshots(
    settings: Settings, writer: _BackupWriter
) -> tuple[float, list[Path], int | None]:
    """Under the writer's lock: the warehouse (checkpointed) and the snapshots; the segments it records.

    Returns how long the warehouse was held, the recorded segment files, and the served generation.
    """
    pointer = None
    if not settings.warehouse_path.exists():
        return 0.0, [], None
    con = connect_writer(settings.warehouse_path)
    held_from = time.monotonic()
    try:
        con.execute("CHECKPOINT")
        writer.copy(
            settings.warehouse_path, _in_home(settings, settings.warehouse_path), pause_at=WAREHOUSE_PAUSE
        )
        wal = Path(f"{settings.warehouse_path}.wal")
        if wal.exists() and wal.stat().st_size:  # nothing after a checkpoint, but never lose a commit
            writer.copy(wal, _in_home(settings, wal))
        segments = _recorded_segments(con, settings.samples_dir)
        if settings.snapshots_dir.is_dir():
            for path in sorted(settings.snapshots_dir.iterdir()):
                if path.is_file() and not _is_temporary(path):
                    writer.copy(path, _in_home(settings, path))
            pointer = read_pointer(settings.snapshots_dir)
    finally:
        con.close()
    return time.monotonic() - held_from, segments, pointer.generation if pointer else None


def _recorded_segments(con: duckdb.DuckDBPyConnection, samples_dir: Path) -> list[Path]:
    """The segment files the warehouse names; every segment on disk when it names none (an older home)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema || '.' || table_name = ?",
        [STATE_TABLE],
    ).fetchone()
    if not (exists and exists[0]):
        return sorted(path for path in samples_dir.rglob("*.parquet") if not _is_temporary(path))
    rows = con.execute(f"SELECT kind, segment FROM {STATE_TABLE} ORDER BY ALL").fetchall()
    return [samples_dir / str(kind) / str(segment) for kind, segment in rows]


def _copy_segments(settings: Settings, writer: _BackupWriter, segments: list[Path]) -> None:
    for path in segments:
        if path.exists():  # a kind's records without series have a state row and no file
            writer.copy(path, _in_home(settings, path))


def _copy_rest_of_home(
    settings: Settings, writer: _BackupWriter, *, include_key: bool
) -> tuple[list[str], list[str]]:
    """Every other file under POLAR_HOME: SQLite files by the backup API, the others byte for byte."""
    home = settings.home_dir
    handled = {settings.warehouse_path, Path(f"{settings.warehouse_path}.wal")}
    skip_dirs = {settings.snapshots_dir, settings.samples_dir, settings.dagster_home}
    skip_dirs |= set(home.glob(f"{BEFORE_RESTORE}-*"))  # what a restore kept inside a mount point
    left_out: list[str] = []
    warnings: list[str] = []
    for path in _walk(home, skip_dirs):
        if path in handled or _is_temporary(path) or _is_sqlite_companion(path):
            continue
        if path == settings.key_file and not include_key:
            left_out.append("secret.key (without_key): keep the key elsewhere, a restore needs it")
            continue
        if _is_sqlite(path):
            writer.sqlite(path, _in_home(settings, path))
        else:
            writer.copy(path, _in_home(settings, path))
    if settings.encryption_key:
        warnings.append(
            "the tokens' key comes from POLAR_ENCRYPTION_KEY, which is not in the backup: keep it with it"
        )
    return left_out, warnings


def _copy_dagster_home(settings: Settings, writer: _BackupWriter) -> tuple[list[str], list[str]]:
    """DAGSTER_HOME: its SQLite storage by the backup API, dagster.yaml, no compute logs."""
    root = settings.dagster_home
    left_out: list[str] = []
    warnings: list[str] = []
    if not root.is_dir():
        return left_out, warnings
    skip = {root / name for name in DAGSTER_LEFT_OUT}
    left_out += [f"dagster/{name}: {why}" for name, why in DAGSTER_LEFT_OUT.items() if (root / name).exists()]
    for path in _walk(root, skip):
        if _is_temporary(path) or _is_sqlite_companion(path):
            continue
        relative = f"{DAGSTER_PART}/{path.relative_to(root).as_posix()}"
        if _is_sqlite(path):
            writer.sqlite(path, relative)
        else:
            writer.copy(path, relative)
    config = root / "dagster.yaml"
    if config.exists() and "postgres" in config.read_text():
        warnings.append(
            "Dagster keeps its runs, partitions and event log in PostgreSQL: they are not in this backup "
            "(back that database up with pg_dump)"
        )
    return left_out, warnings


def _key_description(settings: Settings, include_key: bool) -> str:
    if settings.encryption_key:
        return "from POLAR_ENCRYPTION_KEY, not in the backup"
    if not settings.key_file.is_file():
        return "none yet (no token stored)"
    if include_key:
        return "included: whoever has this backup can decrypt the users' Polar tokens, keep it private"
    return "left out: a restore needs it (POLAR_ENCRYPTION_KEY or the key file)"


# ------------------------------------------------------------------------------------------------ restore


def verify_backup(source: Path) -> dict[str, Any]:
    """The backup's manifest, once every file it lists is there with its size and SHA-256."""
    source = source.expanduser().resolve()
    manifest_path = source / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BackupCorrupt(
            source, [f"no {MANIFEST_NAME} (not a backup, or one that did not finish: it is written last)"]
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        entries = [FileEntry(**entry) for entry in manifest["files"]]
    except (ValueError, KeyError, TypeError) as error:
        raise BackupCorrupt(source, [f"{MANIFEST_NAME} is unreadable ({error})"]) from None
    if manifest.get("format") != BACKUP_FORMAT:
        raise BackupCorrupt(
            source, [f"backup format {manifest.get('format')!r}, this version reads {BACKUP_FORMAT}"]
        )
    problems = []
    for entry in entries:
        if not _safe_relative(entry.path):
            problems.append(f"{entry.path}: not a path inside the backup")
            continue
        path = source / entry.path
        if not path.is_file():
            problems.append(f"{entry.path}: missing")
            continue
        size, digest = _hash_file(path)
        if size != entry.size:
            problems.append(f"{entry.path}: {size} bytes, the manifest says {entry.size}")
        elif digest != entry.sha256:
            problems.append(f"{entry.path}: its SHA-256 differs from the manifest's (the file changed)")
    if problems:
        raise BackupCorrupt(source, problems)
    return dict(manifest)


def restore(settings: Settings, source: Path) -> RestoreReport:
    """Put the backup at ``source`` in place of POLAR_HOME (and DAGSTER_HOME), keeping what was there.

    Refuses before changing anything when the backup does not verify, when the warehouse is open in
    another process (its lock) or a Dagster run is in progress, or when the backup has no key and none is
    at hand. The previous content moves to ``<home>.before-restore-<time>`` beside the home (inside it,
    under ``before-restore-<time>/``, when the home is a mount point); then the files are copied in, the
    home is migrated to the current layout, runs that were in progress at backup time are marked failed, and
    the snapshot is republished if the home moved (its sample views name files by path).
    """
    source = source.expanduser().resolve()
    manifest = verify_backup(source)
    entries = [FileEntry(**entry) for entry in manifest["files"]]
    home, dagster_home = settings.home_dir, settings.dagster_home
    key_in_backup = bool(manifest.get("includes_key"))
    if not key_in_backup and not settings.encryption_key and not settings.key_file.is_file():
        raise RestoreRefused(
            f"the backup {source} holds no encryption key and none is at hand: set POLAR_ENCRYPTION_KEY or "
            f"put the key file at {settings.key_file}, or the restored tokens cannot be decrypted"
        )
    holder = _hold_warehouse(settings)
    try:
        _refuse_runs_in_progress(settings)
    finally:
        if holder is not None:
            holder.close()

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved: list[Path] = []
    kept_key: bytes | None = None
    if not key_in_backup and not settings.encryption_key:
        kept_key = settings.key_file.read_bytes()
    for directory in [home] + ([] if dagster_home.is_relative_to(home) else [dagster_home]):
        aside = _move_aside(directory, stamp)
        if aside is not None:
            moved.append(aside)
    try:
        for entry in entries:
            part, _, rest = entry.path.partition("/")
            destination = (home if part == HOME_PART else dagster_home) / rest
            destination.parent.mkdir(parents=True, exist_ok=True)
            _, digest = _copy_hashing(source / entry.path, destination, entry.mode)
            if digest != entry.sha256:
                raise BackupCorrupt(source, [f"{entry.path}: changed while it was being restored"])
        if kept_key is not None:
            fd = os.open(settings.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(kept_key)
    except BaseException as error:
        where = ", ".join(str(path) for path in moved) or "nowhere (the home was empty)"
        raise BackupError(
            f"restoring {source} failed ({error}); the previous content is at {where}: move it back to undo"
        ) from error

    warnings = []
    config = dagster_home / "dagster.yaml"
    own_config = config.exists() and not config.read_text().startswith(MARKER)
    if own_config and str(dagster_home) != manifest.get("source_dagster_home"):
        warnings.append(f"{config} is your own (no polar-flow marker): check the paths in it")
    migration = migrate_home(settings)
    prepare_dagster_home(settings)  # dagster.yaml with this home's paths
    # Dagster's own SQLite storage came from the backup (not when it lives in PostgreSQL).
    restored_runs = any(entry.path.startswith(f"{DAGSTER_PART}/history/") for entry in entries)
    runs_failed = _fail_interrupted_runs(settings) if restored_runs else []
    warnings += _undecryptable_tokens(settings)
    republished = None
    if str(home) != manifest.get("source_home") and read_pointer(settings.snapshots_dir) is not None:
        republished = _republish(settings)
    if settings.encryption_key:
        key = "POLAR_ENCRYPTION_KEY (a key file in the backup is restored but not used)"
    elif key_in_backup:
        key = "from the backup"
    else:
        key = "kept from the previous home"
    return RestoreReport(
        source=source,
        home=home,
        dagster_home=dagster_home,
        moved_aside=tuple(moved),
        files=len(entries),
        key=key,
        runs_marked_failed=tuple(runs_failed),
        republished=republished,
        migration=migration,
        warnings=tuple(warnings),
    )


def restore_prompt(settings: Settings, source: Path) -> str:
    """What ``polar-flow restore`` asks before restoring (the CLI adds ``[y/N]``)."""
    manifest = json.loads((source / MANIFEST_NAME).read_text()) if (source / MANIFEST_NAME).is_file() else {}
    made = manifest.get("created_at", "at an unknown time")
    return (
        f"Restore the backup {source} (made {made} from {manifest.get('source_home', '?')}) into "
        f"{settings.home_dir}? Its current content is moved aside to "
        f"{settings.home_dir.name}.{BEFORE_RESTORE}-<time> beside it, not deleted. Stop the API and "
        "`polar-flow dev` first."
    )


def _hold_warehouse(settings: Settings) -> duckdb.DuckDBPyConnection | None:
    """Open the warehouse without waiting, so a process that has it open is named, not waited for."""
    if not settings.warehouse_path.exists():
        return None
    try:
        return duckdb.connect(str(settings.warehouse_path))
    except duckdb.IOException as error:
        if "lock" not in str(error).lower():
            raise
        holder = str(error).partition("lock is held in ")[2].partition(". ")[0] or "another process"
        raise RestoreRefused(
            f"the warehouse {settings.warehouse_path} is open in {holder}: stop it (a run, `polar-flow dev`, "
            "a DuckDB shell) and restore again. Nothing was changed."
        ) from None


def _refuse_runs_in_progress(settings: Settings) -> None:
    if not (settings.dagster_home / "dagster.yaml").exists():
        return
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    try:
        busy = instance.get_run_records(filters=dg.RunsFilter(statuses=list(IN_PROGRESS)))
    finally:
        instance.dispose()
    if busy:
        runs = ", ".join(
            f"{record.dagster_run.run_id[:8]} ({record.dagster_run.job_name}, "
            f"pid {record.dagster_run.tags.get(PID_TAG, '?')})"
            for record in busy
        )
        raise RestoreRefused(
            f"Dagster runs are in progress in {settings.dagster_home} ({runs}): let them finish (or end "
            "them) and restore again. Nothing was changed."
        )


def _move_aside(directory: Path, stamp: str) -> Path | None:
    """Move a non-empty ``directory``'s content aside; where it went (None when there was nothing)."""
    if not directory.is_dir() or not any(directory.iterdir()):
        return None
    if not os.path.ismount(directory):
        aside = directory.with_name(f"{directory.name}.{BEFORE_RESTORE}-{stamp}")
        try:
            os.rename(directory, aside)
        except OSError:
            pass  # the parent is not writable, or another filesystem: keep it inside instead
        else:
            directory.mkdir(mode=0o700)
            return aside
    return move_contents_aside(directory, stamp)


def move_contents_aside(directory: Path, stamp: str) -> Path:
    """Move everything in ``directory`` into ``directory/before-restore-<stamp>/`` (a mount point's way)."""
    aside = directory / f"{BEFORE_RESTORE}-{stamp}"
    aside.mkdir(mode=0o700)
    for entry in sorted(directory.iterdir()):
        if entry != aside and not entry.name.startswith(f"{BEFORE_RESTORE}-"):
            os.rename(entry, aside / entry.name)
    return aside


def _fail_interrupted_runs(settings: Settings) -> list[str]:
    """Runs the backup caught in progress: nothing will finish them, and each holds a pool slot."""
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    failed = []
    try:
        for record in instance.get_run_records(filters=dg.RunsFilter(statuses=list(IN_PROGRESS))):
            run = record.dagster_run
            instance.report_run_failed(run, "in progress when the backup was taken; marked failed by restore")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            failed.append(run.run_id)
    finally:
        instance.dispose()
    return failed


def _undecryptable_tokens(settings: Settings) -> list[str]:
    """A warning when the key at hand does not open the restored tokens (a keyless backup, another key)."""
    store = open_control_store(settings)
    for user in store.list_users():
        try:
            store.token_for(user.user_id)
        except RuntimeError:
            return [
                f"the encryption key at hand does not decrypt user {user.user_id}'s token: put the key the "
                "backup was made with in place, or connect the users again"
            ]
    return []


def _republish(settings: Settings) -> int:
    from polar_pipeline.warehouse.snapshot import publish_snapshot

    con = connect_writer(settings.warehouse_path)
    try:
        return publish_snapshot(con, settings.snapshots_dir, samples_dir=settings.samples_dir).generation
    finally:
        con.close()


# ------------------------------------------------------------------------------------------------ files


def _in_home(settings: Settings, path: Path) -> str:
    return f"{HOME_PART}/{path.relative_to(settings.home_dir).as_posix()}"


def _walk(root: Path, skip: set[Path]) -> Iterator[Path]:
    """Regular files under ``root`` in a stable order, not descending into ``skip``."""
    for dirpath, dirnames, filenames in os.walk(root):
        folder = Path(dirpath)
        dirnames[:] = sorted(name for name in dirnames if folder / name not in skip)
        for name in sorted(filenames):
            path = folder / name
            if path not in skip and path.is_file() and not path.is_symlink():
                yield path


def _is_temporary(path: Path) -> bool:
    """What a killed writer or publish leaves: hidden ``.…tmp…`` files nobody reads."""
    return (path.name.startswith(".") and ".tmp" in path.name) or ".partial-" in path.name


def _is_sqlite_companion(path: Path) -> bool:
    return any(path.name.endswith(suffix) for suffix in SQLITE_COMPANIONS)


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER


def _safe_relative(text: str) -> bool:
    path = PurePosixPath(text)
    return (
        not path.is_absolute()
        and ".." not in path.parts
        and len(path.parts) >= 2
        and path.parts[0] in (HOME_PART, DAGSTER_PART)
    )


def _copy_hashing(source: Path, destination: Path, mode: int, *, pause_at: str = "") -> tuple[int, str]:
    """Copy bytes (never a link) to a new file with ``mode``, fsynced; its size and SHA-256.

    ``pause_at`` names a crash-test point passed after the first chunk (``warehouse.pause``).
    """
    digest = hashlib.sha256()
    size = 0
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with open(source, "rb") as reader, os.fdopen(fd, "wb") as writer:
        while chunk := reader.read(CHUNK):
            writer.write(chunk)
            digest.update(chunk)
            if pause_at and not size:
                pause_point(pause_at)
            size += len(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return size, digest.hexdigest()


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
