"""GET /api/v1/users/{user_id}/exercises, exercises/{id}, exercises/{id}/samples."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["exercises"])
