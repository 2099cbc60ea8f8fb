"""GET /api/v1/users/{user_id}/cardio-load: Polar's daily cardio load."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["cardio-load"])
