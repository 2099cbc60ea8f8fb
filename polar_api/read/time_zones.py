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
TIME_ZONES_QUERY = "SELECT user_id, time_zone FROM control.user_time_zones"


def _loadable(name: object) -> str | None:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return str(name)


def user_time_zone(cursor: duckdb.DuckDBPyConnection, user_id: str) -> str | None:
    """The user's IANA zone name, or None when the snapshot has none (or one this machine cannot load)."""
    try:
        row = cursor.execute(USER_TIME_ZONE_QUERY, {"user_id": user_id}).fetchone()
    except duckdb.CatalogException:  # a snapshot from before the table existed
        return None
    return None if row is None else _loadable(row[0])


def time_zones(cursor: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every user's loadable zone: read once per generation by the API, then a dict lookup."""
    try:
        rows = cursor.execute(TIME_ZONES_QUERY).fetchall()
    except duckdb.CatalogException:
        return {}
    return {str(user): zone for user, name in rows if (zone := _loadable(name)) is not None}
