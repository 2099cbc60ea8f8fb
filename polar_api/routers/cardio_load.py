"""GET /api/v1/users/{user_id}/cardio-load: Polar's daily cardio load (``polar_api.read.cardio_load``)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from polar_api.deps import Days, SnapshotCursor, UserId, require_user, user_today, window_start
from polar_api.read.cardio_load import CardioLoadDay, cardio_load_days

router = APIRouter(tags=["cardio-load"])


@router.get("/users/{user_id}/cardio-load")
def list_cardio_load(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 30
) -> list[CardioLoadDay]:
    """Polar's cardio load on the user's local dates today - days ... today, newest first."""
    since, until = window_start(request, cursor, user_id, days), user_today(request, cursor, user_id)
    loads = cardio_load_days(cursor, user_id, since, until)
    if not loads:
        require_user(cursor, user_id)
    return loads
