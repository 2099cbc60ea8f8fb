"""The ``inbox_imports`` sensor: each stable zip in ``$POLAR_HOME/inbox/<user_id>/`` runs ``import_job``.

A file is taken only when its size and modification time are the same as at the previous tick (they are kept
in the cursor), so an upload still being copied is not imported half-way. The run key names the user, the
file and that size and time: the same file is never imported twice, and a file replaced under the same name
is imported again. A folder whose name is not a valid user id is skipped, with the reason in the tick's log.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from polar_pipeline.control_store import InvalidUserId, validate_user_id
from polar_pipeline.defs.inbox.jobs import IMPORT_JOB, import_run_config
from polar_pipeline.settings import Settings

INBOX_SENSOR = "inbox_imports"
INBOX_DIR = "inbox"
INTERVAL_SECONDS = 60


@dataclass(frozen=True)
class InboxFile:
    user_id: str
    path: Path
    size: int
    mtime_ns: int

    @property
    def cursor_key(self) -> str:
        return f"{self.user_id}/{self.path.name}"

    @property
    def run_key(self) -> str:
        return f"inbox-{self.user_id}-{self.path.name}-{self.size}-{self.mtime_ns}"


def inbox_dir(settings: Settings) -> Path:
    return settings.home_dir / INBOX_DIR


def scan_inbox(inbox: Path, log: logging.Logger | None = None) -> list[InboxFile]:
    """Every ``<user_id>/*.zip`` of the inbox; folders that are not user ids are skipped (and said so)."""
    if not inbox.is_dir():
        return []
    found: list[InboxFile] = []
    for folder in sorted(inbox.iterdir()):
        if not folder.is_dir():
            continue
        try:
            user_id = validate_user_id(folder.name)
        except InvalidUserId as error:
            if log is not None:
                log.warning(f"inbox folder {folder} skipped: {error}")
            continue
        for path in sorted(folder.glob("*.zip")):
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed between listing and stat
                continue
            if path.is_file():
                found.append(InboxFile(user_id, path, stat.st_size, stat.st_mtime_ns))
    return found


def inbox_requests(
    settings: Settings, cursor: str | None, log: logging.Logger | None = None
) -> dg.SensorResult:
    """A run for each zip unchanged since the previous tick; the cursor remembers what this tick saw."""
    seen: dict[str, list[int]] = json.loads(cursor) if cursor else {}
    files = scan_inbox(inbox_dir(settings), log)
    run_requests = [
        dg.RunRequest(
            run_key=file.run_key,
            job_name=IMPORT_JOB,
            run_config=import_run_config(file.path, file.user_id),
            tags={"polar-flow/user": file.user_id},
        )
        for file in files
        if seen.get(file.cursor_key) == [file.size, file.mtime_ns]
    ]
    now_seen = {file.cursor_key: [file.size, file.mtime_ns] for file in files}
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(now_seen, sort_keys=True))


def build_inbox_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name=INBOX_SENSOR,
        job_name=IMPORT_JOB,
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Imports each Polar export zip dropped into $POLAR_HOME/inbox/<user_id>/ once its size and "
            "modification time stop changing; the zip is removed from the inbox after a successful import."
        ),
    )
    def inbox_imports(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return inbox_requests(settings, context.cursor, context.log)

    return inbox_imports
