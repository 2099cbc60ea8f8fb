"""Who the serving snapshot knows.

A user is known iff ``marts.daily_metrics`` has a row for them. That mart has a row for every calendar day
from a user's first to last day with any raw record, so any user with synced data has one, whichever streams
they have. Callers use this to tell "unknown user" (404) from "known user, nothing in range" (an empty list).
"""

from __future__ import annotations

from datetime import date

import duckdb

USER_EXISTS_QUERY = "SELECT EXISTS (SELECT 1 FROM marts.daily_metrics WHERE user_id = $user_id)"
KNOWN_USERS_QUERY = "SELECT DISTINCT user_id FROM marts.daily_metrics"
NEWEST_DAYS_QUERY = "SELECT user_id, max(day) FROM marts.daily_metrics GROUP BY user_id"


def user_exists(cursor: duckdb.DuckDBPyConnection, user_id: str) -> bool:
    """Whether the snapshot behind ``cursor`` holds any day for ``user_id``."""
    row = cursor.execute(USER_EXISTS_QUERY, {"user_id": user_id}).fetchone()
    return row is not None and bool(row[0])


def known_users(cursor: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Every user the snapshot holds a day for: read once per generation by the API, then a set lookup."""
    return frozenset(str(row[0]) for row in cursor.execute(KNOWN_USERS_QUERY).fetchall())


def newest_days(cursor: duckdb.DuckDBPyConnection) -> dict[str, date]:
    """Each user's newest day with any synced record (the mart's last row): how current their data is."""
    return {str(user): day for user, day in cursor.execute(NEWEST_DAYS_QUERY).fetchall()}
