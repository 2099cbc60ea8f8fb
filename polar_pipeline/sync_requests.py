"""Sync and pattern-detection requests: the queue between the API and the orchestrator.

The API must neither write the warehouse (Dagster is its one writer) nor run a sync inside an HTTP request,
so a trigger only records a request here, in the control store's SQLite file (WAL), and answers at once.
The ``sync_requests`` sensor (``defs/requests``) turns each queued request into a Dagster run and copies
the run's progress back; the API reads it from here.

A request is ``queued`` (no run yet), then ``running`` (its run is queued or executing in Dagster),
``retrying`` (a run failed and Dagster re-executes it), and ends ``succeeded`` or ``failed``. A user has
at most one open (queued, running or retrying) request per kind: triggering again returns the open one, so
a client that retries its POST creates no second sync. A partial unique index holds this even for two
writers at once.

No Dagster import here: the API process uses this module and stays light.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from polar_pipeline.control_store import ControlTables, validate_user_id

Kind = Literal["sync", "patterns"]
Status = Literal["queued", "running", "succeeded", "failed", "retrying"]
KINDS: tuple[Kind, ...] = ("sync", "patterns")
OPEN_STATUSES: tuple[Status, ...] = ("queued", "running", "retrying")
FINISHED_STATUSES: tuple[Status, ...] = ("succeeded", "failed")
MIN_DAYS, MAX_DAYS = 1, 365
MAX_ERROR_CHARS = 2000

SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_requests (
    request_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('sync', 'patterns')),
    days INTEGER NOT NULL CHECK (days BETWEEN 1 AND 365),
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'retrying')),
    run_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS sync_requests_one_open_per_user_kind
    ON sync_requests (user_id, kind) WHERE status IN ('queued', 'running', 'retrying');
CREATE INDEX IF NOT EXISTS sync_requests_by_user ON sync_requests (user_id, created_at);
"""
_COLUMNS = (
    "request_id, user_id, kind, days, status, run_id, attempts, error, created_at, updated_at, finished_at"
)
_OPEN = "status IN ('queued', 'running', 'retrying')"

# Which status may follow which. A finished request never changes again: a later run of the same request
# (say a re-execution started by hand in the Dagster UI) is that run's business, not the request's.
ALLOWED_TRANSITIONS: dict[Status, frozenset[Status]] = {
    "queued": frozenset({"queued", "running", "retrying", "succeeded", "failed"}),
    "running": frozenset({"running", "retrying", "succeeded", "failed"}),
    "retrying": frozenset({"running", "retrying", "succeeded", "failed"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
}


class InvalidTransition(ValueError):
    """A status change the state machine does not allow (for example, anything after ``succeeded``)."""


class UnknownRequest(KeyError):
    """No request with that id."""


@dataclass(frozen=True)
class SyncRequest:
    """One request as stored; ``attempts`` counts the Dagster runs made for it (1 + retries)."""

    request_id: str
    user_id: str
    kind: Kind
    days: int
    status: Status
    run_id: str | None
    attempts: int
    error: str | None
    created_at: str
    updated_at: str
    finished_at: str | None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class Enqueued:
    """What a trigger got: the request, and whether this call created it or found it open already."""

    request: SyncRequest
    created: bool


def _now() -> str:
    # Fixed width (microseconds, +00:00), so the text sorts as the instants do.
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _row_to_request(row: tuple[object, ...]) -> SyncRequest:
    request_id, user_id, kind, days, status, run_id, attempts, error, created, updated, finished = row
    return SyncRequest(
        request_id=str(request_id),
        user_id=str(user_id),
        kind=_kind(str(kind)),
        days=int(str(days)),
        status=_status(str(status)),
        run_id=None if run_id is None else str(run_id),
        attempts=int(str(attempts)),
        error=None if error is None else str(error),
        created_at=str(created),
        updated_at=str(updated),
        finished_at=None if finished is None else str(finished),
    )


def _kind(text: str) -> Kind:
    for kind in KINDS:
        if kind == text:
            return kind
    raise ValueError(f"unknown request kind {text!r}")


def _status(text: str) -> Status:
    for status in ALLOWED_TRANSITIONS:
        if status == text:
            return status
    raise ValueError(f"unknown request status {text!r}")


class SyncRequestQueue(ControlTables):
    """The ``sync_requests`` table in the control store file: enqueue, read, and record progress."""

    SCHEMA = SCHEMA

    def enqueue(self, user_id: str, kind: Kind, days: int) -> Enqueued:
        """A new queued request, or the user's open request of this kind if there is one (then unchanged)."""
        validate_user_id(user_id)
        if kind not in KINDS:
            raise ValueError(f"unknown request kind {kind!r}: use one of {', '.join(KINDS)}")
        if not MIN_DAYS <= days <= MAX_DAYS:
            raise ValueError(f"days must be between {MIN_DAYS} and {MAX_DAYS}, got {days}")
        now = _now()
        request_id = "req_" + secrets.token_hex(8)
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")  # look and insert under the write lock: no second open request
            existing = con.execute(
                f"SELECT {_COLUMNS} FROM sync_requests WHERE user_id = ? AND kind = ? AND {_OPEN}",
                (user_id, kind),
            ).fetchone()
            if existing is not None:
                return Enqueued(_row_to_request(existing), created=False)
            con.execute(
                f"INSERT INTO sync_requests ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, 'queued', NULL, 0, NULL, ?, ?, NULL)",
                (request_id, user_id, kind, days, now, now),
            )
        return Enqueued(self._get(request_id), created=True)

    def _get(self, request_id: str) -> SyncRequest:
        with self._connect() as con:
            row = con.execute(
                f"SELECT {_COLUMNS} FROM sync_requests WHERE request_id = ?", (request_id,)
            ).fetchone()
        if row is None:
            raise UnknownRequest(request_id)
        return _row_to_request(row)

    def get(self, user_id: str, request_id: str) -> SyncRequest | None:
        """The request if it is ``user_id``'s; another user's request is as invisible as a missing one."""
        with self._connect() as con:
            row = con.execute(
                f"SELECT {_COLUMNS} FROM sync_requests WHERE request_id = ? AND user_id = ?",
                (request_id, user_id),
            ).fetchone()
        return None if row is None else _row_to_request(row)

    def latest(self, user_id: str, limit: int = 10) -> list[SyncRequest]:
        """The user's newest requests first, of both kinds."""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {_COLUMNS} FROM sync_requests WHERE user_id = ? "
                "ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (user_id, limit),
            ).fetchall()
        return [_row_to_request(row) for row in rows]

    def open_requests(self) -> list[SyncRequest]:
        """Every queued, running or retrying request, oldest first: what the sensor looks at each tick."""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {_COLUMNS} FROM sync_requests WHERE {_OPEN} ORDER BY created_at, rowid"
            ).fetchall()
        return [_row_to_request(row) for row in rows]

    def record_progress(
        self,
        request_id: str,
        status: Status,
        *,
        run_id: str | None,
        attempts: int,
        error: str | None = None,
    ) -> SyncRequest:
        """Move a request to ``status`` with its run's id and attempt count; writes only when they changed.

        Writing nothing when nothing changed matters: the sensor calls this every few seconds for every
        open request, and each commit to this file is seen by every reader of it (the API's key cache).
        """
        if error is not None and len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS - 1] + "…"
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute(
                f"SELECT {_COLUMNS} FROM sync_requests WHERE request_id = ?", (request_id,)
            ).fetchone()
            if row is None:
                raise UnknownRequest(request_id)
            current = _row_to_request(row)
            if (current.status, current.run_id, current.attempts, current.error) == (
                status,
                run_id,
                attempts,
                error,
            ):
                return current
            if status not in ALLOWED_TRANSITIONS[current.status]:
                raise InvalidTransition(
                    f"request {request_id} is {current.status}: it cannot become {status}"
                )
            now = _now()
            con.execute(
                "UPDATE sync_requests SET status = ?, run_id = ?, attempts = ?, error = ?, updated_at = ?, "
                "finished_at = ? WHERE request_id = ?",
                (
                    status,
                    run_id,
                    attempts,
                    error,
                    now,
                    now if status in FINISHED_STATUSES else None,
                    request_id,
                ),
            )
        return self._get(request_id)
