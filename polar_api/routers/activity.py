"""GET /api/v1/users/{user_id}/activity and activity/{date}: daily activity."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["activity"])
