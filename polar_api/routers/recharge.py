"""GET /api/v1/users/{user_id}/recharge: Nightly Recharge per night."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["recharge"])
