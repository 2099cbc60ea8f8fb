"""Whose "today" it is: each user's IANA time zone, as the serving snapshot carries it.

``control.user_time_zones`` is the warehouse's copy of the control store's zones (docs/time-zones.md): the
person's own zone, else a zone with the UTC offset of their newest record. A snapshot published before the
table existed has none, and a user without a zone has no row; either way the answer is None, and the caller
falls back to the machine's date.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

USER_TIME_ZONE_QUERY = "SELECT time_zone FROM control.user_time_zones WHERE user_id = $user_id"


def user_time_zone(cursor: duckdb.DuckDBPyConnection, user_id: str) -> str | None:
    """The user's IANA zone name, or None when the snapshot has none (or one this machine cannot load)."""
    try:
        row = cursor.execute(USER_TIME_ZONE_QUERY, {"user_id": user_id}).fetchone()
    except duckdb.CatalogException:  # a snapshot from before the table existed
        return None
    if row is None:
        return None
    try:
        ZoneInfo(str(row[0]))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return str(row[0])
