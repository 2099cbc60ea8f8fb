"""Sleep nights, shaped like polar-flow-server's ``GET /api/v1/users/{user_id}/sleep``."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from polar_api.deps import SnapshotCursor, UserId

router = APIRouter(tags=["sleep"])


class SleepNight(BaseModel):
    """One night; hours are seconds / 3600 (unrounded) as in polar-flow-server."""

    date: date
    sleep_score: int | None
    total_sleep_hours: float | None
    light_sleep_hours: float | None
    deep_sleep_hours: float | None
    rem_sleep_hours: float | None
    hrv_avg: float | None
    heart_rate_avg: float | None
    breathing_rate_avg: float | None
    skin_temperature_avg: float | None


# Typed columns and sentinel rules come from the staging views (dbt_like_sql/staging), not from here.
SLEEP_QUERY = """
SELECT
    s.day,
    s.sleep_score,
    (s.light_sleep_seconds + s.deep_sleep_seconds + s.rem_sleep_seconds) / 3600.0,
    s.light_sleep_seconds / 3600.0,
    s.deep_sleep_seconds / 3600.0,
    s.rem_sleep_seconds / 3600.0,
    r.hrv_rmssd_ms,
    list_avg(list_filter(
        map_values(TRY_CAST(s.raw_payload::JSON->'heart_rate_samples' AS MAP(VARCHAR, DOUBLE))),
        lambda bpm: bpm > 0)),
    r.breathing_rate,
    NULL
FROM staging.sleep AS s
LEFT JOIN staging.nightly_recharge AS r
    ON r.user_id = s.user_id AND r.day = s.day AND r.reject_reason IS NULL
WHERE s.user_id = ? AND s.day >= ? AND s.reject_reason IS NULL
ORDER BY s.day DESC
"""

KNOWN_USER_QUERY = """
SELECT EXISTS (SELECT 1 FROM raw.sleep WHERE user_id = $1)
    OR EXISTS (SELECT 1 FROM raw.nightly_recharge WHERE user_id = $1)
    OR EXISTS (SELECT 1 FROM raw.activity WHERE user_id = $1)
    OR EXISTS (SELECT 1 FROM raw.exercises WHERE user_id = $1)
"""

FIELDS = list(SleepNight.model_fields)


@router.get("/users/{user_id}/sleep", response_model=list[SleepNight])
def list_sleep(
    user_id: UserId,
    cursor: SnapshotCursor,
    days: Annotated[
        int, Query(ge=1, le=365, description="nights since today - days (both ends inclusive)")
    ] = 7,
) -> list[SleepNight]:
    since = date.today() - timedelta(days=days)
    rows = cursor.execute(SLEEP_QUERY, [user_id, since]).fetchall()
    if not rows:
        known = cursor.execute(KNOWN_USER_QUERY, [user_id]).fetchall()
        if not known[0][0]:
            raise HTTPException(status_code=404, detail=f"no data for user {user_id} in the serving snapshot")
    return [SleepNight(**dict(zip(FIELDS, row, strict=True))) for row in rows]
