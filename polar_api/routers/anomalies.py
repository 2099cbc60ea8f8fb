"""GET /api/v1/users/{user_id}/anomalies."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["anomalies"])
