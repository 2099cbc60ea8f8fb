"""Each user's time zone: from their newest records unless the person set one, copied into the warehouse.

The publish step calls ``record_time_zones`` inside the writer (the ``duckdb`` pool), just before it copies
the snapshot, so every snapshot carries the zones as they are then: the records synced so far and any
``polar-flow users set-zone`` since (docs/time-zones.md). The control store keeps a zone the person set and
ignores a record older than the one the zone came from.
"""

from __future__ import annotations

import duckdb

from polar_pipeline.control_store import ControlStore, UserTimeZone
from polar_pipeline.ingest.time_zones import newest_offsets, zone_for_offset
from polar_pipeline.warehouse.schema import ensure_raw_schema, newest_offset_rows, replace_user_time_zones


def record_time_zones(store: ControlStore, con: duckdb.DuckDBPyConnection) -> list[UserTimeZone]:
    """Update the store from the newest offsets in raw, then rewrite the warehouse's copy of the zones."""
    ensure_raw_schema(con)
    users = [user.user_id for user in store.list_users()]
    for user_id, seen in newest_offsets(newest_offset_rows(con, users)).items():
        zone = zone_for_offset(seen.offset_minutes)
        if zone is not None:
            store.record_zone_from_records(user_id, zone, seen.seen_at)
    zones = store.time_zones()
    replace_user_time_zones(con, [(zone.user_id, zone.time_zone, zone.source) for zone in zones])
    return zones
