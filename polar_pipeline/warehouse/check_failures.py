"""Which data checks fail for which user, kept in ``control.check_failures`` for health, status and alerts.

Dagster records a check's outcome per run, which covers many users; a person's page needs to know whether
*their* rows fail something. Each evaluation over a slice replaces the rows of that check for the slice's
users: a failing user gets (or keeps) a row with the failing row count, a passing one loses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import duckdb

from polar_pipeline.warehouse.schema import CHECK_FAILURES_TABLE
from polar_pipeline.warehouse.slices import UserDaySlice


def record_check_outcome(
    con: duckdb.DuckDBPyConnection,
    *,
    check_name: str,
    asset: str,
    blocking: bool,
    failing_by_user: Mapping[str, int],
    user_day_slice: UserDaySlice,
    evaluated_at: datetime,
) -> None:
    """Replace ``check_name``'s rows for the slice's users by the users failing it now (inside a transaction
    of the caller's, or its own statement)."""
    con.execute(
        f"DELETE FROM {CHECK_FAILURES_TABLE} WHERE check_name = $check AND list_contains($users, user_id)",
        {"check": check_name, "users": list(user_day_slice.users)},
    )
    rows = [
        (
            user,
            check_name,
            asset,
            blocking,
            count,
            user_day_slice.first_day,
            user_day_slice.last_day,
            evaluated_at,
        )
        for user, count in failing_by_user.items()
        if count > 0
    ]
    if rows:
        con.executemany(
            f"INSERT OR REPLACE INTO {CHECK_FAILURES_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
