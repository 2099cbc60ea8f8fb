"""Payloads shared by the parsing, record and stream tests: the real AccessLink fixtures and hand-written
records that tests mutate one field at a time."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.support.fixtures import ACCESSLINK_FIXTURES

FIXTURES = ACCESSLINK_FIXTURES


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def real_night() -> dict[str, Any]:
    """The real fixture night (docs/accesslink.md §6.4): crosses midnight at +01:00."""
    return {
        "polar_user": "https://polaraccesslink.com/v3/users/00000001",
        "date": "2025-10-01",
        "sleep_start_time": "2025-09-30T23:33:22.675+01:00",
        "sleep_end_time": "2025-10-01T07:13:22.675+01:00",
        "device_id": "66A9802D",
        "continuity": 3.3,
        "continuity_class": 3,
        "light_sleep": 14400,
        "deep_sleep": 3390,
        "rem_sleep": 8160,
        "unrecognized_sleep_stage": 0,
        "sleep_score": 80,
        "total_interruption_duration": 1650,
        "sleep_charge": 3,
        "sleep_goal": 25200,
        "sleep_rating": 3,
        "short_interruption_duration": 900,
        "long_interruption_duration": 750,
        "sleep_cycles": 6,
        "group_duration_score": 95.0,
        "group_solidity_score": 70.1594,
        "group_regeneration_score": 78.3665,
        "hypnogram": {"23:33": 3, "23:58": 4, "00:01": 4, "01:20": 1, "02:40": 3, "07:13": 0},
        "heart_rate_samples": {"23:35": 61, "23:40": 0, "00:05": 55, "07:10": 58},
    }


def mutated(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(base)
    for key, value in changes.items():
        key = key.replace("__", "-")
        if value is REMOVE:
            payload.pop(key)
        else:
            payload[key] = value
    return payload


REMOVE = object()
RECHARGE = {
    "date": "2025-10-01",
    "heart_rate_avg": 56,
    "beat_to_beat_avg": 1068,
    "heart_rate_variability_avg": 56,
    "breathing_rate_avg": 11.6,
    "nightly_recharge_status": 3,
    "ans_charge": -2.9,
    "ans_charge_status": 2,
    "hrv_samples": {"23:35": 40},
    "breathing_samples": {"23:35": 11.0},
}
EXERCISE_PAYLOAD = {
    "id": "y7lOpwnJ",
    "start_time": "2026-02-22T07:50:17",
    "start_time_utc_offset": 0,
    "duration": "PT8239.604S",
    "calories": 1600,
    "distance": 19149.0,
    "heart_rate": {"average": 149, "maximum": 170},
    "fat_percentage": 42,
    "carbohydrate_percentage": 54,
    "protein_percentage": 4,
    "heart_rate_zones": [{"index": 0, "lower_limit": 96, "upper_limit": 115, "in_zone": "PT7M24S"}],
    "samples": [{"recording_rate": 1, "sample_type": 0, "data": "88,88,87"}],
    "training_load_pro": {"cardio-load": 231.633, "muscle-load": -1.0},
}
ACTIVITY_PAYLOAD = {
    "start_time": "2025-10-01T00:00",
    "end_time": "2025-10-01T23:59:59",
    "active_duration": "PT7H22M",
    "calories": 2853,
    "active_calories": 1183,
    "steps": 11138,
    "distance_from_steps": 7676.34,
}
