"""GET /api/v1/users/{user_id}/baselines, baselines/{metric}, baselines/check/{metric}/{value}."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["baselines"])
