"""Sync and pattern-detection requests as the API shows them, read from the control store's request queue.

Unlike the other modules here this one does not read the serving snapshot: a request's state changes while
a run goes on, and the queue (``polar_pipeline.sync_requests``, written by the API and the Dagster sensor)
is where it is kept.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from polar_pipeline.sync_requests import Kind, Status, SyncRequest, SyncRequestQueue


class SyncRequestView(BaseModel):
    """One request and how far it got."""

    request_id: str
    user_id: str
    kind: Kind = Field(description="'sync': AccessLink, marts, analytics; 'patterns': the analytics only")
    status: Status = Field(
        description=(
            "queued: waiting for the orchestrator; running: its Dagster run is queued or executing; "
            "retrying: a run failed and Dagster re-executes it; succeeded or failed: the run ended (a new "
            "serving snapshot is published right after a success)"
        )
    )
    days: int = Field(description="the user's last N local days, today included")
    run_id: str | None = Field(description="the Dagster run (the newest one, after retries)")
    attempts: int = Field(description="Dagster runs made for the request: 1, plus one per retry")
    error: str | None = Field(description="why the run failed: the failed steps and their errors")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    status_url: str = Field(description="where to follow this request")


class SyncStatus(BaseModel):
    """A user's requests, newest first."""

    user_id: str
    requests: list[SyncRequestView]


def request_view(request: SyncRequest, status_path: str) -> SyncRequestView:
    """``request`` for the API; ``status_path`` is the user's sync/status path."""
    return SyncRequestView(
        request_id=request.request_id,
        user_id=request.user_id,
        kind=request.kind,
        status=request.status,
        days=request.days,
        run_id=request.run_id,
        attempts=request.attempts,
        error=request.error,
        created_at=datetime.fromisoformat(request.created_at),
        updated_at=datetime.fromisoformat(request.updated_at),
        finished_at=None if request.finished_at is None else datetime.fromisoformat(request.finished_at),
        status_url=f"{status_path}?request_id={request.request_id}",
    )


def sync_status(
    queue: SyncRequestQueue, user_id: str, status_path: str, *, request_id: str | None, limit: int
) -> SyncStatus | None:
    """The user's newest ``limit`` requests, or just ``request_id``; None when that is not the user's."""
    if request_id is not None:
        found = queue.get(user_id, request_id)
        if found is None:
            return None
        requests = [found]
    else:
        requests = queue.latest(user_id, limit)
    return SyncStatus(user_id=user_id, requests=[request_view(item, status_path) for item in requests])
