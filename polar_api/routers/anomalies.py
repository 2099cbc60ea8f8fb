"""GET /api/v1/users/{user_id}/anomalies: the flagged metrics of the latest day, or of a ``days`` window.

The rows come from ``marts.anomalies`` (``polar_api.read.anomalies``); nothing is judged per request.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from polar_api.deps import DaysOrLatest, SnapshotCursor, UserId, require_user, user_today, window_start
from polar_api.read.anomalies import Anomalies, anomalies

router = APIRouter(tags=["anomalies"])


@router.get("/users/{user_id}/anomalies")
def list_anomalies(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: DaysOrLatest = None
) -> Anomalies:
    """Without ``days``: the user's latest day. With it: every flagged day of today - days ... today."""
    require_user(cursor, user_id)
    if days is None:
        return anomalies(cursor, user_id)
    window = (window_start(request, cursor, user_id, days), user_today(request, cursor, user_id))
    return anomalies(cursor, user_id, window)
