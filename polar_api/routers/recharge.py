"""GET /api/v1/users/{user_id}/recharge: Nightly Recharge per night (query: ``polar_api.read.recharge``)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from polar_api.deps import Days, SnapshotCursor, UserId, require_user, user_today, window_start
from polar_api.read.recharge import RechargeNight, recharge_nights

router = APIRouter(tags=["recharge"])


@router.get("/users/{user_id}/recharge")
def list_recharge(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 30
) -> list[RechargeNight]:
    """The recharges of the nights ending on the user's local dates today - days ... today, newest first."""
    since, until = window_start(request, cursor, user_id, days), user_today(request, cursor, user_id)
    nights = recharge_nights(cursor, user_id, since, until)
    if not nights:
        require_user(cursor, user_id)
    return nights
