"""Daily activity (``activity-{date}-…json``) as AccessLink v3 ``/v3/users/activities`` payloads.

``start_time`` is the day's local midnight, as AccessLink sends it. Active and inactive durations are
approximated from ``activityLevels`` (light, moderate and vigorous levels count as active, sedentary as
inactive; sleep as neither). Step and MET samples stay in the archive.
"""

from __future__ import annotations

import json
from typing import Any

from polar_pipeline.polar_export.values import (
    RecordError,
    as_object,
    iso_date,
    iso_duration_seconds,
    number,
    seconds_as_iso,
    whole_number,
    without_none,
)
from polar_pipeline.warehouse.raw_store import RawRecord

STREAM = "activity"
PREFIX = "activity-"

ACTIVE_LEVELS = frozenset(
    {"LIGHT", "CONTINUOS_MODERATE", "INTERMITTENT_MODERATE", "CONTINUOS_VIGOROUS", "INTERMITTENT_VIGOROUS"}
)
INACTIVE_LEVELS = frozenset({"SEDENTARY"})


def is_activity(basename: str) -> bool:
    return basename.startswith(PREFIX) and basename.endswith(".json")


def activity_record(document: Any, member: str) -> RawRecord:
    if not isinstance(document, dict):
        raise RecordError("activity: expected a JSON object")
    day = iso_date(document.get("date"))
    if day is None:
        raise RecordError(f"activity: no usable date ({document.get('date')!r})")
    summary = as_object(document.get("summary"))
    levels = summary.get("activityLevels")
    active, inactive = _level_seconds(levels) if isinstance(levels, list) else (None, None)
    payload = without_none(
        {
            "date": day.isoformat(),
            "start_time": f"{day.isoformat()}T00:00:00",
            "calories": whole_number(summary.get("calories")),
            "steps": whole_number(summary.get("stepCount")),
            "distance_from_steps": number(summary.get("stepsDistance")),
            "inactivity_alert_count": whole_number(summary.get("inactivityAlertCount")),
            "active_duration": seconds_as_iso(active) if active is not None else None,
            "inactive_duration": seconds_as_iso(inactive) if inactive is not None else None,
            "export_member": member,
            "export_summary": {key: value for key, value in document.items() if key != "samples"},
        }
    )
    return RawRecord(day.isoformat(), day, json.dumps(payload, ensure_ascii=False))


def _level_seconds(levels: list[Any]) -> tuple[float, float]:
    active = inactive = 0.0
    for level in levels:
        if not isinstance(level, dict):
            continue
        seconds = iso_duration_seconds(level.get("duration")) or 0.0
        if level.get("level") in ACTIVE_LEVELS:
            active += seconds
        elif level.get("level") in INACTIVE_LEVELS:
            inactive += seconds
    return active, inactive
