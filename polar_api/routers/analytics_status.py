"""GET /api/v1/users/{user_id}/analytics/status: the features the data supports (docs/methods.md §13)."""

from __future__ import annotations

from fastapi import APIRouter

from polar_api.deps import AsOfDay, SnapshotCursor, UserId, require_user
from polar_api.read.analytics_status import AnalyticsStatus, analytics_status

router = APIRouter(tags=["analytics"])


@router.get("/users/{user_id}/analytics/status")
def get_analytics_status(user_id: UserId, cursor: SnapshotCursor, day: AsOfDay = None) -> AnalyticsStatus:
    """Days with data per stream, and each feature's progress towards unlocking (``day``: as of that day)."""
    require_user(cursor, user_id)
    return analytics_status(cursor, user_id, day)
