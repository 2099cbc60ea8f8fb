"""POST sync/trigger, GET sync/status, POST patterns/detect: requests to the orchestrator."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["sync"])
