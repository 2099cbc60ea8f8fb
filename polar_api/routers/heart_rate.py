"""GET /api/v1/users/{user_id}/heart-rate: daily continuous heart-rate figures."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["heart-rate"])
