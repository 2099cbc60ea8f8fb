"""GET /api/v1/users/{user_id}/activity and activity/{date}; the queries are ``polar_api.read.activity``."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from polar_api.deps import Days, LocalDay, SnapshotCursor, UserId, require_user, user_today, window_start
from polar_api.errors import not_found
from polar_api.read.activity import ActivityDay, ActivityDayDetail, activity_day, activity_days

router = APIRouter(tags=["activity"])


@router.get("/users/{user_id}/activity")
def list_activity(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 30
) -> list[ActivityDay]:
    """Daily activity on the user's local dates today - days ... today, newest first."""
    since, until = window_start(request, cursor, user_id, days), user_today(request, cursor, user_id)
    summaries = activity_days(cursor, user_id, since, until)
    if not summaries:
        require_user(cursor, user_id)
    return summaries


@router.get(
    "/users/{user_id}/activity/{date}",
    responses=not_found("unknown user, or no activity summary on that date"),
)
def get_activity(user_id: UserId, date: LocalDay, cursor: SnapshotCursor) -> ActivityDayDetail:
    """The activity summary of one local date."""
    summary = activity_day(cursor, user_id, date)
    if summary is None:
        require_user(cursor, user_id)
        raise HTTPException(status_code=404, detail=f"no activity for user {user_id} on {date.isoformat()}")
    return summary
