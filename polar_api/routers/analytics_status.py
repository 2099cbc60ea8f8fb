"""GET /api/v1/users/{user_id}/analytics/status."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["analytics"])
