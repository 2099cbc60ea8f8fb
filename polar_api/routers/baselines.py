"""GET /api/v1/users/{user_id}/baselines, baselines/{metric}, baselines/check/{metric}/{value}.

The reads and how polar-flow-server's fields map onto ours are in ``polar_api.read.baselines``. A metric is
named by our ``marts.baselines`` name or by polar-flow-server's; an unknown name is 404 listing both sets, and
a known metric without a baseline is 404 too (never 200 null). A value to check must be finite: NaN and
infinities are 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from polar_api.deps import SnapshotCursor, UserId, require_user
from polar_api.errors import not_found
from polar_api.read.baselines import (
    Baseline,
    BaselineCheck,
    NoBaseline,
    UnknownMetric,
    check_value,
    latest_baseline,
    latest_baselines,
)

MetricName = Annotated[
    str,
    Path(
        max_length=100,
        description="a marts.baselines metric (ln_rmssd, hrv_rmssd_ms, sleep_score, sleep_seconds, "
        "overnight_hr_bpm, breathing_rate, steps, training_load) or polar-flow-server's name (hrv_rmssd, "
        "sleep_score, resting_hr, training_load, training_load_ratio)",
    ),
]
CheckedValue = Annotated[
    float,
    Path(allow_inf_nan=False, description="the value to judge, in the metric's unit; finite"),
]

router = APIRouter(tags=["baselines"])


@router.get("/users/{user_id}/baselines")
def list_baselines(user_id: UserId, cursor: SnapshotCursor) -> list[Baseline]:
    """Every metric's baseline of the user's latest day; [] before the first baseline."""
    found = latest_baselines(cursor, user_id)
    if not found:
        require_user(cursor, user_id)
    return found


CHECK_NOT_FOUND = not_found("unknown user or unknown metric")


@router.get("/users/{user_id}/baselines/check/{metric}/{value}", responses=CHECK_NOT_FOUND)
def check_baseline(
    user_id: UserId, metric: MetricName, value: CheckedValue, cursor: SnapshotCursor
) -> BaselineCheck:
    """Judge ``value`` against the metric's latest baseline with marts.anomalies' fences."""
    require_user(cursor, user_id)
    try:
        return check_value(cursor, user_id, metric, value)
    except UnknownMetric as unknown:
        raise HTTPException(status_code=404, detail=str(unknown)) from None


BASELINE_NOT_FOUND = not_found("unknown user, unknown metric, or no baseline of this metric for the user")


@router.get("/users/{user_id}/baselines/{metric}", responses=BASELINE_NOT_FOUND)
def get_baseline(user_id: UserId, metric: MetricName, cursor: SnapshotCursor) -> Baseline:
    """One metric's baseline of the user's latest day."""
    try:
        return latest_baseline(cursor, user_id, metric)
    except UnknownMetric as unknown:
        raise HTTPException(status_code=404, detail=str(unknown)) from None
    except NoBaseline as missing:
        require_user(cursor, user_id)
        raise HTTPException(status_code=404, detail=str(missing)) from None
