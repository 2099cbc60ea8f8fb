"""GET /api/v1/users/{user_id}/sleep: the last ``days`` nights; the query is ``polar_api.read.sleep``.

"Today" is the user's local date (their zone from the snapshot, ``polar_api.read.time_zones``): a night
belongs to the day its owner woke up on, so the window must end on that person's date, not the server's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from polar_api.deps import SnapshotCursor, UserId
from polar_api.read.sleep import SleepNight, sleep_nights
from polar_api.read.time_zones import user_time_zone
from polar_api.read.users import user_exists
from polar_pipeline import clock

router = APIRouter(tags=["sleep"])


@router.get("/users/{user_id}/sleep")
def list_sleep(
    request: Request,
    user_id: UserId,
    cursor: SnapshotCursor,
    days: Annotated[
        int, Query(ge=1, le=365, description="nights since today - days (both ends inclusive)")
    ] = 7,
) -> list[SleepNight]:
    today = clock.today(request.app.state.settings, user_time_zone(cursor, user_id))
    nights = sleep_nights(cursor, user_id, since=today - timedelta(days=days))
    if not nights and not user_exists(cursor, user_id):
        raise HTTPException(status_code=404, detail=f"no data for user {user_id} in the serving snapshot")
    return nights
