"""Request-scoped dependencies: a private cursor on the current serving snapshot, the user's day window."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Annotated, Any

import duckdb
from fastapi import Depends, HTTPException, Path, Query, Request, Response
from pydantic import BeforeValidator

from polar_api.read.time_zones import time_zones
from polar_api.read.users import known_users
from polar_pipeline import clock
from polar_pipeline.control_store import USER_ID_PATTERN
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.snapshot import SnapshotReader, generation_memo

GENERATION_HEADER = "X-Snapshot-Generation"
"""The serving generation that answered: every query of one request reads that one generation."""


def snapshot_cursor(request: Request, response: Response) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on the current generation, held for the whole request; the response names the generation.

    A generation published meanwhile does not change what this request reads; the next request gets it.
    """
    reader: SnapshotReader = request.app.state.reader
    with reader.cursor() as (cursor, info):
        response.headers[GENERATION_HEADER] = str(info.generation)
        yield cursor


def per_generation(cursor: duckdb.DuckDBPyConnection, name: str, load: Any) -> Any:
    """``load(cursor)``, computed once per snapshot generation.

    A generation never changes, so the users it knows and their zones are read on its first request and then
    looked up in memory: a query per request would cost more than the route's own read.
    """
    memo = generation_memo(cursor)
    if memo is None:  # a cursor from elsewhere (a test, a script): no memo to keep it in
        return load(cursor)
    if name not in memo:
        memo[name] = load(cursor)
    return memo[name]


SnapshotCursor = Annotated[duckdb.DuckDBPyConnection, Depends(snapshot_cursor)]
UserId = Annotated[
    str,
    Path(
        pattern=USER_ID_PATTERN.pattern,
        max_length=100,
        description="the user id (Polar user id): 1-100 letters, digits, '_' or '-'",
    ),
]
Days = Annotated[
    int,
    Query(
        ge=1,
        le=365,
        description="how far back: the local dates today-days ... today, both ends inclusive (1-365)",
    ),
]
"""The ``days`` parameter of every list route; each route gives its own default (polar-flow-server's)."""

DaysOrLatest = Annotated[
    int | None,
    Query(
        ge=1,
        le=365,
        description="how far back: the local dates today-days ... today (1-365); without it, the latest day",
    ),
]
"""``days`` of the routes whose default is the user's latest day rather than a window."""


ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_day_text(value: Any) -> Any:
    """Only YYYY-MM-DD reaches the date parser, which would also take "0" (1970-01-01) or a date-time."""
    if not isinstance(value, str) or not ISO_DAY.fullmatch(value):
        raise ValueError("expected a calendar date written YYYY-MM-DD")
    return value


LocalDay = Annotated[
    date,
    Path(description="a local calendar date, YYYY-MM-DD (for sleep: the wake-up date)"),
    BeforeValidator(_iso_day_text),
]
"""A ``{date}`` path parameter: exactly YYYY-MM-DD and a date that exists, else 422."""

AsOfDay = Annotated[
    date | None,
    Query(description="the day to show, YYYY-MM-DD; default the user's latest day"),
    BeforeValidator(_iso_day_text),
]
"""An optional ``day`` query parameter, validated like ``LocalDay``."""


def local_today(settings: Settings, cursor: duckdb.DuckDBPyConnection, user_id: str) -> date:
    """The user's own date now (their zone from the snapshot), else the machine's (``clock.today``).

    Without a request, so the MCP tools (``polar_api.mcp``) count their windows exactly as the routes do.
    """
    zones: dict[str, str] = per_generation(cursor, "time_zones", time_zones)
    return clock.today(settings, zones.get(user_id))


def user_today(request: Request, cursor: duckdb.DuckDBPyConnection, user_id: str) -> date:
    """The user's own date now (their zone from the snapshot), else the machine's (``clock.today``)."""
    return local_today(request.app.state.settings, cursor, user_id)


def window_start(request: Request, cursor: duckdb.DuckDBPyConnection, user_id: str, days: int) -> date:
    """The first local date of a ``days`` window: today - days (so up to days + 1 dates, as upstream)."""
    return user_today(request, cursor, user_id) - timedelta(days=days)


def require_user(cursor: duckdb.DuckDBPyConnection, user_id: str) -> None:
    """404 when the snapshot knows nothing of ``user_id``; a known user with nothing in range gets []."""
    users: frozenset[str] = per_generation(cursor, "known_users", known_users)
    if user_id not in users:
        raise HTTPException(status_code=404, detail=f"no data for user {user_id} in the serving snapshot")
