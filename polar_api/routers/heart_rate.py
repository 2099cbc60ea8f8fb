"""GET /api/v1/users/{user_id}/heart-rate: daily continuous heart rate (``polar_api.read.heart_rate``)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from polar_api.deps import Days, SnapshotCursor, UserId, require_user, user_today, window_start
from polar_api.read.heart_rate import HeartRateDay, heart_rate_days

router = APIRouter(tags=["heart-rate"])


@router.get("/users/{user_id}/heart-rate")
def list_heart_rate(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 30
) -> list[HeartRateDay]:
    """Daily continuous heart rate on the user's local dates today - days ... today, newest first."""
    since, until = window_start(request, cursor, user_id, days), user_today(request, cursor, user_id)
    summaries = heart_rate_days(cursor, user_id, since, until)
    if not summaries:
        require_user(cursor, user_id)
    return summaries
