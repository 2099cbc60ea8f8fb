"""GET /api/v1/users/{user_id}/sleep: the last ``days`` nights; the query is ``polar_api.read.sleep``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from polar_api.deps import SnapshotCursor, UserId
from polar_api.read.sleep import SleepNight, sleep_nights
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
    nights = sleep_nights(
        cursor, user_id, since=clock.today(request.app.state.settings) - timedelta(days=days)
    )
    if not nights and not user_exists(cursor, user_id):
        raise HTTPException(status_code=404, detail=f"no data for user {user_id} in the serving snapshot")
    return nights
