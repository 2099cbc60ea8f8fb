"""Our routes: hrv-status, training-load, sleep-debt, trends, recovery, correlations, illness-watch."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["metrics"])
