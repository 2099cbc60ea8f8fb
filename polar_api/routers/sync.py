"""POST sync/trigger, POST patterns/detect, GET sync/status: requests to the orchestrator, not work done here.

A trigger records a request in the control store's queue and answers 202 at once; the ``sync_requests``
Dagster sensor runs it and records its progress, which ``sync/status`` reads. Nothing here writes the
warehouse (Dagster is its one writer) or calls AccessLink: the request returns in milliseconds.

``X-Polar-Token`` connects a user, or rotates their token: it is stored encrypted in the control store, and
the sensor registers a new user's token with AccessLink before the first sync (a refusal fails the request,
with the reason in ``sync/status``). The token is never logged, echoed or put in a message; a malformed one
is refused without repeating it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response

from polar_api.deps import UserId
from polar_api.read.sync import SyncRequestView, SyncStatus, request_view, sync_status
from polar_pipeline.connections import open_control_store
from polar_pipeline.control_store import UnknownUser
from polar_pipeline.settings import Settings
from polar_pipeline.sync_requests import Kind, SyncRequestQueue

router = APIRouter(tags=["sync"])

TOKEN_HEADER = "X-Polar-Token"
MAX_TOKEN_CHARS = 4096

RequestDays = Annotated[
    int,
    Query(
        ge=1,
        le=365,
        description=(
            "the user's last N local days, today included (1-365). AccessLink keeps only about the last "
            "28-30 days, so a sync of more days fetches no older data from it (it re-reads what is stored)"
        ),
    ),
]
PolarToken = Annotated[
    str | None,
    Header(
        alias=TOKEN_HEADER,
        description=(
            "optional: the user's Polar AccessLink access token, to connect the user or rotate the token. "
            "Stored encrypted, registered with AccessLink before the user's first sync; never echoed"
        ),
    ),
]


def request_queue(request: Request) -> SyncRequestQueue:
    """The app's queue, opened on first use (its table is created then)."""
    queue: SyncRequestQueue | None = getattr(request.app.state, "sync_requests", None)
    if queue is None:
        queue = SyncRequestQueue(request.app.state.settings.control_store_path)
        request.app.state.sync_requests = queue
    return queue


def status_path(request: Request, user_id: str) -> str:
    return str(request.app.url_path_for("sync_status", user_id=user_id))


def require_connected(settings: Settings, user_id: str) -> None:
    try:
        open_control_store(settings).get_user(user_id)
    except UnknownUser:
        raise HTTPException(
            status_code=404,
            detail=f"unknown user {user_id}: connect them first (send their Polar token in {TOKEN_HEADER})",
        ) from None


def store_token(settings: Settings, user_id: str, token: str) -> None:
    """Store (or rotate) the user's token, encrypted; a malformed one is refused without repeating it."""
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii() or not token.isprintable():
        raise HTTPException(status_code=400, detail=f"{TOKEN_HEADER} is not a Polar access token")
    open_control_store(settings).upsert_user(user_id, token)


def enqueue(request: Request, response: Response, user_id: str, kind: Kind, days: int) -> SyncRequestView:
    """Queue (or find the open) request; 202 with a Location to follow it."""
    enqueued = request_queue(request).enqueue(user_id, kind, days)
    view = request_view(enqueued.request, status_path(request, user_id))
    response.headers["Location"] = view.status_url
    return view


@router.post(
    "/users/{user_id}/sync/trigger",
    status_code=202,
    summary="Queue a sync of the user's last N days",
    description=(
        "Queues a sync (AccessLink into the warehouse, then the marts and the analytics, then a new serving "
        "snapshot) and answers 202 at once with the request and a `Location` to follow it at "
        "`sync/status`. The orchestrator's `sync_requests` sensor starts the run within seconds (the Dagster "
        "daemon must be running: `polar-flow dev`). While the user has a sync queued or running, a second "
        "trigger returns that one. AccessLink keeps only about the last 28-30 days. Send `X-Polar-Token` to "
        "connect a new user or rotate a token; without it, an unknown user is 404."
    ),
    responses={
        404: {"description": "unknown user, and no token to connect them"},
        400: {"description": "X-Polar-Token is not a token (the answer does not repeat it)"},
    },
)
def trigger_sync(
    request: Request,
    response: Response,
    user_id: UserId,
    days: RequestDays = 28,
    polar_token: PolarToken = None,
) -> SyncRequestView:
    settings: Settings = request.app.state.settings
    if polar_token is not None:
        store_token(settings, user_id, polar_token)
    else:
        require_connected(settings, user_id)
    return enqueue(request, response, user_id, "sync", days)


@router.post(
    "/users/{user_id}/patterns/detect",
    status_code=202,
    summary="Queue a recomputation of the user's patterns",
    description=(
        "Queues a run of the analytics assets (correlations, trends, risk, readiness, recovery, illness "
        "watch, insights) over the user's last N days from the marts already built, without calling "
        "AccessLink, then a new serving snapshot; 202 at once, followed like a sync at `sync/status`. A "
        "second call while one is queued or running returns that one."
    ),
    responses={404: {"description": "unknown user"}},
)
def detect_patterns(
    request: Request, response: Response, user_id: UserId, days: RequestDays = 28
) -> SyncRequestView:
    require_connected(request.app.state.settings, user_id)
    return enqueue(request, response, user_id, "patterns", days)


@router.get(
    "/users/{user_id}/sync/status",
    name="sync_status",
    summary="The user's sync and pattern requests, newest first",
    description=(
        "Each request's status (queued, running, retrying, succeeded, failed), Dagster run id, error and "
        "times; `request_id` picks one (404 when it is not this user's)."
    ),
    responses={404: {"description": "unknown user, or no such request for this user"}},
)
def get_sync_status(
    request: Request,
    user_id: UserId,
    request_id: Annotated[str | None, Query(max_length=64, description="one request")] = None,
    limit: Annotated[int, Query(ge=1, le=50, description="how many of the newest requests")] = 10,
) -> SyncStatus:
    status = sync_status(
        request_queue(request),
        user_id,
        status_path(request, user_id),
        request_id=request_id,
        limit=limit,
    )
    if status is None:
        raise HTTPException(status_code=404, detail=f"no request {request_id} for user {user_id}")
    if not status.requests:
        require_connected(request.app.state.settings, user_id)
    return status
