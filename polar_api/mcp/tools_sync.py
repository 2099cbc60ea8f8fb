"""trigger_sync and get_sync_status: the REST sync trigger's request queue, not a sync run here.

``trigger_sync`` records a request in the control store's queue (``polar_pipeline.sync_requests``), exactly
as ``POST /api/v1/users/{user_id}/sync/trigger`` does, and returns at once; the ``sync_requests`` Dagster
sensor runs it and a new snapshot is published afterwards. ``get_sync_status`` is ``GET …/sync/status``.
Neither reads a Polar token nor calls AccessLink.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from polar_api.mcp.access import user_for_call
from polar_api.mcp.answers import Freshness, McpRuntime, reading_if_published, unpublished_freshness
from polar_api.mcp.arguments import UserId
from polar_api.read.sync import SyncRequestView, SyncStatus, request_view, sync_status
from polar_pipeline.connections import open_control_store
from polar_pipeline.control_store import UnknownUser

STATUS_PATH = "/api/v1/users/{user_id}/sync/status"
"""The REST route a request is followed at (``polar_api.routers.sync``): the same ``status_url`` as there."""

SyncDays = Annotated[
    int,
    Field(
        ge=1,
        le=365,
        description="sync the user's last N local days, today included (1-365). Polar keeps only about the "
        "last 28-30 days, so more days fetch nothing older",
    ),
]


class SyncTriggerAnswer(Freshness):
    request: SyncRequestView = Field(description="the queued request, or the open one found")
    created: bool = Field(description="true: this call queued it; false: one was already queued or running")


class SyncStatusAnswer(Freshness):
    status: SyncStatus = Field(description="the user's requests, newest first")


def _connected(runtime: McpRuntime, user_id: str) -> None:
    try:
        open_control_store(runtime.settings).get_user(user_id)
    except UnknownUser:
        raise ToolError(
            f"unknown user {user_id}: connect the account first (polar-flow connect, or the REST API's "
            "sync trigger with X-Polar-Token)"
        ) from None


def _freshness(runtime: McpRuntime, user_id: str) -> dict[str, Any]:
    with reading_if_published(runtime, user_id) as current:
        if current is None:
            return unpublished_freshness(runtime, user_id, "data")
        return current.freshness("data", [current.newest_day])


def register(server: MCPServer, runtime: McpRuntime) -> None:
    """Add the sync tools to ``server``."""

    @server.tool(
        annotations=ToolAnnotations(read_only_hint=False, idempotent_hint=True, open_world_hint=True),
        description=(
            "Queue a sync of the user's data from Polar (then the analytics are recomputed and a new "
            "snapshot is published). Returns at once with the request: status queued, running, retrying, "
            "succeeded or failed; follow it with get_sync_status. A sync usually takes a minute or two "
            "once the orchestrator picks it up, and requests move only while its daemon runs. While a "
            "sync is queued or running, this returns that one (created=false): calling again is safe."
        ),
    )
    def trigger_sync(days: SyncDays = 28, user_id: UserId = None) -> SyncTriggerAnswer:
        user = user_for_call(user_id)
        _connected(runtime, user)
        enqueued = runtime.requests.enqueue(user, "sync", days)
        return SyncTriggerAnswer(
            **_freshness(runtime, user),
            request=request_view(enqueued.request, STATUS_PATH.format(user_id=user)),
            created=enqueued.created,
        )

    @server.tool(
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
        description=(
            "The user's sync and pattern-detection requests, newest first (or the one request_id): "
            "status queued (waiting for the orchestrator), running, retrying (a run failed and is "
            "re-executed; error says why), succeeded (a new snapshot follows) or failed (error names the "
            "failed steps); with run_id, attempts and times. Also how current the user's data is."
        ),
    )
    def get_sync_status(
        request_id: Annotated[str | None, Field(max_length=64, description="one request's id")] = None,
        limit: Annotated[int, Field(ge=1, le=50, description="how many of the newest requests")] = 10,
        user_id: UserId = None,
    ) -> SyncStatusAnswer:
        user = user_for_call(user_id)
        found = sync_status(
            runtime.requests, user, STATUS_PATH.format(user_id=user), request_id=request_id, limit=limit
        )
        if found is None:
            raise ToolError(f"no request {request_id} for user {user}")
        if not found.requests:
            _connected(runtime, user)
        return SyncStatusAnswer(**_freshness(runtime, user), status=found)
