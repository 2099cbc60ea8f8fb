"""GET /api/v1/users/{user_id}/export/summary and export/*.csv."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["export"])
