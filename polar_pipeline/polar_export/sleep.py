"""Sleep (``sleep_result_*`` and ``sleep_score_*``, each one array of nights) as AccessLink v3 sleep payloads.

The two files are joined on ``night``: the result gives the times, stages and interruptions, the score
file the sleep score, group scores and sleep charge. A score night without a result night cannot give a
sleep window and is quarantined. The hypnogram is rebuilt as AccessLink's ``{"HH:MM": stage}`` from the
start time plus each state change's offset.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from polar_pipeline.polar_export.values import (
    RecordError,
    iso_date,
    iso_duration_seconds,
    number,
    whole_number,
    whole_seconds,
    without_none,
)
from polar_pipeline.warehouse.raw_store import RawRecord

STREAM = "sleep"
RESULT_PREFIX = "sleep_result_"
SCORE_PREFIX = "sleep_score_"

RATINGS = {
    "SLEPT_BAD": 1,
    "SLEPT_QUITE_BAD": 2,
    "SLEPT_NEITHER_BAD_NOR_WELL": 3,
    "SLEPT_QUITE_WELL": 4,
    "SLEPT_WELL": 5,
}
"""``hypnogram.rating`` → AccessLink ``sleep_rating``; ``UNKNOWN`` has no value."""

STAGES = {"WAKE": 0, "REM": 1, "NONREM1": 2, "NONREM2": 3, "NONREM3": 4, "WS_UNKNOWN": 5}
"""Sleep states → AccessLink hypnogram codes."""


def is_sleep_result(basename: str) -> bool:
    return basename.startswith(RESULT_PREFIX) and basename.endswith(".json")


def is_sleep_score(basename: str) -> bool:
    return basename.startswith(SCORE_PREFIX) and basename.endswith(".json")


def night_of(entry: Any, family: str) -> date:
    """The ``night`` of a result or score entry; ``RecordError`` without one."""
    if not isinstance(entry, dict):
        raise RecordError(f"{family}: expected a JSON object per night")
    night = iso_date(entry.get("night"))
    if night is None:
        raise RecordError(f"{family}: no usable night ({entry.get('night')!r})")
    return night


def sleep_record(
    result: dict[str, Any], score: dict[str, Any] | None, result_member: str, score_member: str | None
) -> RawRecord:
    """One night: its result entry, its score entry if any, and the members they came from."""
    night = night_of(result, "sleep result")
    evaluation = _object(result.get("evaluation"))
    analysis = _object(evaluation.get("analysis"))
    interruptions = _object(evaluation.get("interruptions"))
    phases = _object(evaluation.get("phaseDurations"))
    sleep_result = _object(result.get("sleepResult"))
    hypnogram = _object(sleep_result.get("hypnogram"))
    cycles = _object(_object(_object(sleep_result.get("sleepCycles")).get("cycles")))
    cycle_models = cycles.get("sleepCycleModels")
    score_result = _object(_object(score).get("sleepScoreResult"))
    payload = without_none(
        {
            "date": night.isoformat(),
            "sleep_start_time": hypnogram.get("sleepStart"),
            "sleep_end_time": hypnogram.get("sleepEnd"),
            "device_id": hypnogram.get("deviceId") if isinstance(hypnogram.get("deviceId"), str) else None,
            "continuity": number(analysis.get("continuityIndex")),
            "continuity_class": whole_number(analysis.get("continuityClass")),
            "light_sleep": whole_seconds(phases.get("light")),
            "deep_sleep": whole_seconds(phases.get("deep")),
            "rem_sleep": whole_seconds(phases.get("rem")),
            "unrecognized_sleep_stage": whole_seconds(phases.get("unknown")),
            "total_interruption_duration": whole_seconds(interruptions.get("totalDuration")),
            "short_interruption_duration": whole_seconds(interruptions.get("shortDuration")),
            "long_interruption_duration": whole_seconds(interruptions.get("longDuration")),
            "sleep_goal": whole_seconds(hypnogram.get("sleepGoal")),
            "sleep_rating": RATINGS.get(str(hypnogram.get("rating"))),
            "sleep_cycles": len(cycle_models) if isinstance(cycle_models, list) else None,
            "sleep_score": whole_number(score_result.get("sleepScore")),
            "group_duration_score": number(score_result.get("groupDurationScore")),
            "group_solidity_score": number(score_result.get("groupSolidityScore")),
            "group_regeneration_score": number(score_result.get("groupRefreshScore")),
            "sleep_charge": whole_number(score_result.get("scoreRate")),
            "hypnogram": _hypnogram(hypnogram),
            "export_member": result_member,
            "export_score_member": score_member,
            "export_summary": {"sleep_result": result, "sleep_score": score},
        }
    )
    return RawRecord(night.isoformat(), night, json.dumps(payload, ensure_ascii=False))


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _hypnogram(hypnogram: dict[str, Any]) -> dict[str, int] | None:
    """State changes as ``{"HH:MM": code}`` on the sleep start's own clock; None if they cannot be placed."""
    changes = hypnogram.get("sleepStateChanges")
    start_text = hypnogram.get("sleepStart")
    if not isinstance(changes, list) or not changes or not isinstance(start_text, str):
        return None
    try:
        start = datetime.fromisoformat(start_text)
    except ValueError:
        return None
    stages: dict[str, int] = {}
    for change in changes:
        offset = iso_duration_seconds(change.get("offsetFromStart")) if isinstance(change, dict) else None
        code = STAGES.get(str(change.get("state"))) if isinstance(change, dict) else None
        if offset is None or code is None:
            return None
        stages[(start + timedelta(seconds=offset)).strftime("%H:%M")] = code
    return stages
