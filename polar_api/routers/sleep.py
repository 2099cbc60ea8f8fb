"""GET /api/v1/users/{user_id}/sleep: the last ``days`` nights; the query is ``polar_api.read.sleep``.

"Today" is the user's local date (their zone from the snapshot, ``polar_api.read.time_zones``): a night
belongs to the day its owner woke up on, so the window must end on that person's date, not the server's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from polar_api.deps import Days, SnapshotCursor, UserId, require_user, window_start
from polar_api.read.sleep import SleepNight, sleep_nights

router = APIRouter(tags=["sleep"])


@router.get("/users/{user_id}/sleep")
def list_sleep(request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 7) -> list[SleepNight]:
    nights = sleep_nights(cursor, user_id, since=window_start(request, cursor, user_id, days))
    if not nights:
        require_user(cursor, user_id)
    return nights
