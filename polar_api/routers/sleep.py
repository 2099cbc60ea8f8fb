"""GET /api/v1/users/{user_id}/sleep and sleep/{date}; the queries are ``polar_api.read.sleep``.

"Today" is the user's local date (their zone from the snapshot, ``polar_api.read.time_zones``): a night
belongs to the day its owner woke up on, so the window must end on that person's date, not the server's.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from polar_api.deps import Days, LocalDay, SnapshotCursor, UserId, require_user, user_today, window_start
from polar_api.errors import not_found
from polar_api.read.sleep import SleepNight, SleepNightDetail, sleep_night, sleep_nights

router = APIRouter(tags=["sleep"])


@router.get("/users/{user_id}/sleep")
def list_sleep(request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 7) -> list[SleepNight]:
    """The nights that ended on the user's local dates today - days ... today, newest first."""
    since, until = window_start(request, cursor, user_id, days), user_today(request, cursor, user_id)
    nights = sleep_nights(cursor, user_id, since=since, until=until)
    if not nights:
        require_user(cursor, user_id)
    return nights


@router.get(
    "/users/{user_id}/sleep/{date}", responses=not_found("unknown user, or no night ended on that date")
)
def get_sleep(user_id: UserId, date: LocalDay, cursor: SnapshotCursor) -> SleepNightDetail:
    """The night that ended on ``date``, with its hypnogram and heart-rate series."""
    night = sleep_night(cursor, user_id, date)
    if night is None:
        require_user(cursor, user_id)
        raise HTTPException(status_code=404, detail=f"no sleep for user {user_id} on {date.isoformat()}")
    return night
