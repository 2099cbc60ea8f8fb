"""GET /api/v1/users/{user_id}/patterns and patterns/{name}."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["patterns"])
