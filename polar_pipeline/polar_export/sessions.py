"""Training sessions (``training-session-*``, ``training-session_*``) as AccessLink v3 exercise payloads.

Two schemas exist: the new one (``identifier``, ``durationMillis``, ``timezoneOffsetMinutes``, numeric
``sport.id``) and the old one (``exportVersion`` 1.x, ISO ``duration``, ``timeZoneOffset``, sport enum strings
on the exercises). Both map onto the AccessLink fields the staging view types. Per-sample series and routes
stay in the archive: the payload keeps the session summary and ``export_member``, the seam a sample store
will read them back through.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from polar_pipeline.polar_export.samples import series_types
from polar_pipeline.polar_export.values import (
    RecordError,
    as_object,
    first_exercise,
    iso_duration_seconds,
    local_datetime,
    number,
    seconds_as_iso,
    whole_number,
    without_none,
)
from polar_pipeline.warehouse.raw_store import RawRecord

STREAM = "exercises"
PREFIXES = ("training-session-", "training-session_")
"""Basename prefixes of a session; ``training-target-`` (planned, never performed) does not match."""

KEY_PREFIX = "export:"

SPORT_IDS: dict[str, tuple[str, str]] = {"1": ("RUNNING", "RUNNING"), "83": ("OTHER", "OTHER_INDOOR")}
"""New-format ``sport.id`` → (AccessLink ``sport``, ``detailed_sport_info``), only pairs seen in real files
(the export has no catalogue and community tables disagree). For any other id, ``detailed_sport_info`` is
the session's ``name`` (Polar writes the sport's name there, in the account's language) as an enum-style
word (``"Strength training"`` → ``STRENGTH_TRAINING``), ``sport`` stays unknown, and ``export_sport_id``
keeps the id."""

SAMPLE_KEYS = frozenset({"samples", "routes", "recordedRoute"})
"""Per-sample content never copied into the raw payload (a sample store reads it from the member)."""


def is_session(basename: str) -> bool:
    return basename.startswith(PREFIXES) and basename.endswith(".json")


def sport_word(name: Any) -> str | None:
    """A sport's display name as an AccessLink-style enum word; None for anything but a non-empty text."""
    if not isinstance(name, str):
        return None
    word = re.sub(r"\W+", "_", name.strip()).strip("_").upper()
    return word or None


def session_key(identity: str) -> str:
    """The natural key: ``export:`` + sha1 of the identity text (see ``_new_format`` / ``_old_format``)."""
    return KEY_PREFIX + hashlib.sha1(identity.encode("utf-8")).hexdigest()


def session_record(document: Any, member: str) -> RawRecord:
    """One session file as a raw ``exercises`` record; ``RecordError`` when it cannot be one."""
    if not isinstance(document, dict):
        raise RecordError("training session: expected a JSON object")
    if "exportVersion" in document:
        version = document["exportVersion"]
        if not (isinstance(version, str) and version.startswith("1.")):
            raise RecordError(f"training session: unknown format version exportVersion={version!r}")
        payload = _old_format(document)
    elif "identifier" in document or "durationMillis" in document:
        payload = _new_format(document)
    else:
        raise RecordError(
            "training session: unknown format (neither identifier/durationMillis nor exportVersion)"
        )
    payload["export_member"] = member
    types = series_types(document)
    if types:
        payload["export_sample_types"] = types  # the series themselves go to the sample store
    start = local_datetime(payload["start_time"])
    assert start is not None  # checked by the format mappers
    return RawRecord(payload["id"], start.date(), json.dumps(payload, ensure_ascii=False))


def summary_of(document: Any) -> Any:
    """The document without per-sample content: what a quarantine row or the payload keeps."""
    if isinstance(document, dict):
        return {key: summary_of(value) for key, value in document.items() if key not in SAMPLE_KEYS}
    if isinstance(document, list):
        return [summary_of(item) for item in document]
    return document


def _start(document: dict[str, Any]) -> datetime:
    start = local_datetime(document.get("startTime"))
    if start is None:
        raise RecordError(f"training session: no usable startTime ({document.get('startTime')!r})")
    return start


def _new_format(document: dict[str, Any]) -> dict[str, Any]:
    """Identity: ``identifier.id`` when present, else (start, duration, sport) like the old format."""
    start = _start(document)
    exercise = first_exercise(document)
    identifier = document.get("identifier")
    export_id = identifier.get("id") if isinstance(identifier, dict) else None
    millis = number(document.get("durationMillis"))
    if millis is None:
        millis = number(exercise.get("durationMillis"))
    sport = document.get("sport") if isinstance(document.get("sport"), dict) else exercise.get("sport")
    sport_id = sport.get("id") if isinstance(sport, dict) else None
    sport_id = str(sport_id) if sport_id is not None else None
    duration = seconds_as_iso(millis / 1000) if millis is not None else None
    if isinstance(export_id, str | int) and str(export_id):
        identity = f"id:{export_id}"
    else:
        identity = f"start:{start.isoformat()}|duration:{duration}|sport:{sport_id}"
    hr_stats = _heart_rate_statistics(exercise)
    load_report = document.get("trainingLoadReport")
    load_report = load_report if isinstance(load_report, dict) else exercise.get("trainingLoadReport")
    sport_names = SPORT_IDS.get(sport_id or "")
    named = sport_word(document.get("name"))
    zones = _new_heart_rate_zones(exercise.get("zones"))
    return without_none(
        {
            "id": session_key(identity),
            "start_time": start.isoformat(timespec="seconds"),
            "start_time_utc_offset": whole_number(
                document.get("timezoneOffsetMinutes", exercise.get("timezoneOffsetMinutes"))
            ),
            "duration": duration,
            "device_id": document.get("deviceId") if isinstance(document.get("deviceId"), str) else None,
            "sport": sport_names[0] if sport_names else None,
            "detailed_sport_info": sport_names[1] if sport_names else named,
            "calories": whole_number(document.get("calories", exercise.get("calories"))),
            "distance": number(document.get("distanceMeters", exercise.get("distanceMeters"))),
            "heart_rate": without_none(
                {
                    "average": whole_number(document.get("hrAvg", hr_stats.get("avg"))),
                    "maximum": whole_number(document.get("hrMax", hr_stats.get("max"))),
                }
            )
            or None,
            "training_load": number(document.get("trainingLoad")),
            "training_load_pro": _load_pro(load_report),
            "fat_percentage": whole_number(document.get("fatPercentage")),
            "carbohydrate_percentage": whole_number(document.get("carboPercentage")),
            "protein_percentage": whole_number(document.get("proteinPercentage")),
            "running_index": whole_number(exercise.get("runningIndex")),
            "heart_rate_zones": zones,
            "has_route": _has_route(exercise),
            "export_format": "new",
            "export_identifier": str(export_id) if export_id is not None else None,
            "export_sport_id": sport_id,
            "export_sport_name": document.get("name") if isinstance(document.get("name"), str) else None,
            "export_summary": summary_of(document),
        }
    )


def _old_format(document: dict[str, Any]) -> dict[str, Any]:
    """Identity: (local start, duration, sport) — the old files carry no id (only the file name does)."""
    start = _start(document)
    exercise = first_exercise(document)
    duration_seconds = iso_duration_seconds(document.get("duration"))
    if duration_seconds is None:
        duration_seconds = iso_duration_seconds(exercise.get("duration"))
    duration = seconds_as_iso(duration_seconds) if duration_seconds is not None else None
    sport = exercise.get("sport") if isinstance(exercise.get("sport"), str) else None
    identity = f"start:{start.isoformat()}|duration:{duration}|sport:{sport}"
    heart_rate = as_object(exercise.get("heartRate"))
    offset = document.get("timeZoneOffset", exercise.get("timezoneOffset"))
    load = document.get("loadInformation")
    load = load if isinstance(load, dict) else exercise.get("loadInformation")
    return without_none(
        {
            "id": session_key(identity),
            "start_time": start.isoformat(timespec="seconds"),
            "start_time_utc_offset": whole_number(offset),
            "duration": duration,
            "device_id": document.get("deviceId") if isinstance(document.get("deviceId"), str) else None,
            "sport": sport,
            "detailed_sport_info": sport,
            "calories": whole_number(document.get("kiloCalories", exercise.get("kiloCalories"))),
            "distance": number(document.get("distance", exercise.get("distance"))),
            "heart_rate": without_none(
                {
                    "average": whole_number(document.get("averageHeartRate", heart_rate.get("avg"))),
                    "maximum": whole_number(document.get("maximumHeartRate", heart_rate.get("max"))),
                }
            )
            or None,
            "training_load_pro": _load_pro(load),
            "has_route": _has_route(exercise),
            "export_format": "old",
            "export_version": document.get("exportVersion"),
            "export_summary": summary_of(document),
        }
    )


def _heart_rate_statistics(exercise: dict[str, Any]) -> dict[str, Any]:
    statistics = exercise.get("statistics")
    items = statistics.get("statistics") if isinstance(statistics, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("type") == "STATISTICS_TYPE_HEART_RATE":
            return item
    return {}


def _load_pro(report: Any) -> dict[str, Any] | None:
    """``cardioLoad``, ``muscleLoad``, ``perceivedLoad`` under AccessLink's kebab keys (−1 = n/a kept)."""
    if not isinstance(report, dict):
        return None
    loads = without_none(
        {
            "cardio-load": number(report.get("cardioLoad")),
            "muscle-load": number(report.get("muscleLoad")),
            "perceived-load": number(report.get("perceivedLoad")),
        }
    )
    return loads or None


def _new_heart_rate_zones(zones: Any) -> list[dict[str, Any]] | None:
    """The heart-rate zone bands as AccessLink's ``heart_rate_zones``; None if any band lacks a limit."""
    for block in zones if isinstance(zones, list) else []:
        if not (isinstance(block, dict) and block.get("type") == "ZONE_TYPE_HEART_RATE"):
            continue
        bands = block.get("zones")
        if not isinstance(bands, list):
            return None
        result = []
        for index, band in enumerate(bands):
            lower = whole_number(band.get("lowerLimit")) if isinstance(band, dict) else None
            upper = whole_number(band.get("higherLimit")) if isinstance(band, dict) else None
            if lower is None or upper is None:
                return None
            in_zone = number(band.get("inZone"))
            result.append(
                without_none(
                    {
                        "index": index,
                        "lower_limit": lower,
                        "upper_limit": upper,
                        "in_zone": seconds_as_iso(in_zone / 1000) if in_zone is not None else None,
                    }
                )
            )
        return result
    return None


def _has_route(exercise: dict[str, Any]) -> bool:
    routes = exercise.get("routes")
    route = routes.get("route") if isinstance(routes, dict) else None
    if isinstance(route, dict) and route.get("wayPoints"):
        return True
    samples = exercise.get("samples")
    return bool(isinstance(samples, dict) and samples.get("recordedRoute"))
