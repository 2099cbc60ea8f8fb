"""Our routes: hrv-status, training-load, sleep-debt, recovery, illness-watch (a ``days`` window, default
30), and trends, correlations (the latest day, or a ``days`` window).

Reads are in ``polar_api.read.metrics`` (marts) and ``polar_api.read.analytics_series`` (analytics tables);
each returns every column of its table, newest day first. An unknown user is 404, a known user with nothing
in range [].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, TypeVar

import duckdb
from fastapi import APIRouter, Request

from polar_api.deps import Days, DaysOrLatest, SnapshotCursor, UserId, require_user, window_start
from polar_api.read.analytics_series import (
    CorrelationRow,
    IllnessWatchDay,
    RecoveryDay,
    TrendRow,
    correlations,
    illness_watch,
    recovery,
    trends,
)
from polar_api.read.metrics import (
    HrvStatusDay,
    SleepDebtDay,
    TrainingLoadDay,
    hrv_status,
    sleep_debt,
    training_load,
)

router = APIRouter(tags=["metrics"])

Row = TypeVar("Row")


def _rows(
    cursor: duckdb.DuckDBPyConnection,
    user_id: str,
    read: Callable[[duckdb.DuckDBPyConnection, str, Any], Sequence[Row]],
    since: date | None,
) -> list[Row]:
    """``read``'s rows; 404 for an unknown user when there are none."""
    found = list(read(cursor, user_id, since))
    if not found:
        require_user(cursor, user_id)
    return found


@router.get("/users/{user_id}/hrv-status")
def list_hrv_status(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 30
) -> list[HrvStatusDay]:
    """marts.hrv_status: the weekly ln rMSSD against the 60-day normal band (docs/methods.md §6)."""
    return _rows(cursor, user_id, hrv_status, window_start(request, cursor, user_id, days))


@router.get("/users/{user_id}/training-load")
def list_training_load(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 30
) -> list[TrainingLoadDay]:
    """marts.training_load: daily load, rolling and EWMA acute:chronic ratios, Polar's ratio (§7)."""
    return _rows(cursor, user_id, training_load, window_start(request, cursor, user_id, days))


@router.get("/users/{user_id}/sleep-debt")
def list_sleep_debt(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 30
) -> list[SleepDebtDay]:
    """marts.sleep_debt: each night's deficit and the 14-night debt (§8)."""
    return _rows(cursor, user_id, sleep_debt, window_start(request, cursor, user_id, days))


@router.get("/users/{user_id}/recovery")
def list_recovery(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 30
) -> list[RecoveryDay]:
    """analytics.recovery: the night's recovery score and its components (§12)."""
    return _rows(cursor, user_id, recovery, window_start(request, cursor, user_id, days))


@router.get("/users/{user_id}/illness-watch")
def list_illness_watch(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: Days = 30
) -> list[IllnessWatchDay]:
    """analytics.illness_watch: heart rate, breathing and HRV against their baselines, per night (§14)."""
    return _rows(cursor, user_id, illness_watch, window_start(request, cursor, user_id, days))


@router.get("/users/{user_id}/trends")
def list_trends(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: DaysOrLatest = None
) -> list[TrendRow]:
    """analytics.trends: 30- and 90-day Mann–Kendall/Theil–Sen trends per metric (§10)."""
    since = window_start(request, cursor, user_id, days) if days is not None else None
    return _rows(cursor, user_id, trends, since)


@router.get("/users/{user_id}/correlations")
def list_correlations(
    request: Request, user_id: UserId, cursor: SnapshotCursor, days: DaysOrLatest = None
) -> list[CorrelationRow]:
    """analytics.correlations: lagged Spearman correlations with q-values, 90-day window (§9)."""
    since = window_start(request, cursor, user_id, days) if days is not None else None
    return _rows(cursor, user_id, correlations, since)
