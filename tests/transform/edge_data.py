"""Hand-made raw payloads that put the marts on their edges; each case is named by the day it lives on.

User ``edge`` (130 days from ``DAY0``):

* days 0..20: HRV every night, so baselines cross n = 6/7 (insufficient → partial) on day 7 and 20/21
  (partial → ready) on day 21, and the HRV reference crosses 13/14 nights on day 20;
* overnight HR: days 0..14 = 44..58 bpm, days 15..30 = 60 bpm, so day 31's 60-day window has MAD = 0 with
  IQR = 8.5 > 0; day 31 itself is 75 bpm (a warning whose robust z uses the IQR fallback);
* steps: 8000 every day until day 80 (IQR = MAD = 0), then 8100 (within the minimum-IQR floor, no alarm),
  9000 (warning) and 12000 (critical) on days 81..83;
* days 40..46: no payload at all (a calendar gap: rows with NULLs, zero load);
* days 60..66: HRV sentinel 0 except days 61 and 64 (n_7d = 2 on day 66, 3 on day 67); days 70..79 HRV 0
  (an all-NULL 7-day window on day 79);
* device A until day 89, device B from day 90 (a new baseline segment);
* workouts every third day from day 45 on, the first on day 48 because 45 falls in the gap (chronic load is
  0 before it, so the ratios stay NULL); one with cardio-load -1.0 and a legacy training_load, one with no
  load at all, and one zoned start_time whose local date is the next day;
* sentinels: continuity 0, sleep_charge -1, HR 0, beat_to_beat 0, muscle-load -1.0, breathing 0;
* untypable rows: a sleep score "eighty" (day 100), an exercise duration "soon" (day 102), an activity with
  a broken active_duration (day 103), a recharge HRV of 900 ms (day 104);
* day 63 has workouts but no sleep (device_id falls back to the earliest workout's device); every 17th
  night is short (light sleep cut to 4000 s) for the sleep debt.

User ``lonely``: one activity day only (first-day-of-history edge for every window).
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from typing import Any

import duckdb

DAY0 = date(2025, 3, 1)
EDGE_DAYS = 130
GAP_DAYS = range(40, 47)
DEVICE_SWITCH_DAY = 90
BAD_SLEEP_DAY, BAD_EXERCISE_DAY, BAD_ACTIVITY_DAY, BAD_RECHARGE_DAY = 100, 102, 103, 104
NO_SLEEP_WORKOUT_DAY = 63
ZONED_EXERCISE_DAY = 50


def day(n: int) -> date:
    return DAY0 + timedelta(days=n)


def _hrv_ms(n: int) -> int:
    """A deterministic wobble around 55 ms, with the sentinel 0 where the docstring says so."""
    if n in range(60, 67) and n not in (61, 64):
        return 0
    if n in range(70, 80):
        return 0
    return round(55 * math.exp(0.08 * math.sin(n * 1.7) + 0.05 * math.cos(n * 0.6)))


def _overnight_hr(n: int) -> int:
    if n < 15:
        return 44 + n
    if n == 31:
        return 75
    if n == 33:
        return 0  # sentinel: no signal
    return 60


def _steps(n: int) -> int:
    return {81: 8100, 82: 9000, 83: 12000}.get(n, 8000 if n <= 80 else 8000 + 37 * (n % 5))


def edge_payloads() -> dict[str, list[tuple[str, str, date, dict[str, Any]]]]:
    """stream -> [(user_id, natural key, day, payload)]."""
    streams: dict[str, list[tuple[str, str, date, dict[str, Any]]]] = {
        "sleep": [],
        "nightly_recharge": [],
        "activity": [],
        "exercises": [],
    }
    for n in range(EDGE_DAYS):
        if n in GAP_DAYS:
            continue
        d = day(n)
        device = "AAAA0001" if n < DEVICE_SWITCH_DAY else "BBBB0002"
        night: dict[str, Any] = {
            "polar_user": "https://polaraccesslink.com/v3/users/1",
            "date": d.isoformat(),
            "sleep_start_time": f"{(d - timedelta(days=1)).isoformat()}T23:{10 + n % 40:02d}:00.000+02:00",
            "sleep_end_time": f"{d.isoformat()}T07:05:00.000+02:00",
            "device_id": device,
            "continuity": 0 if n == 5 else round(2.5 + (n % 7) * 0.2, 1),
            "continuity_class": 0 if n == 5 else 3,
            "light_sleep": 4000 if n % 17 == 0 else 14400 + 60 * (n % 11),
            "deep_sleep": 3600 + 120 * (n % 5),
            "rem_sleep": 6000 + 300 * (n % 3),
            "unrecognized_sleep_stage": 60 * (n % 4),
            "sleep_score": 70 + (n * 7) % 21,
            "total_interruption_duration": 900 + 60 * (n % 6),
            "sleep_charge": -1 if n < 3 else 3,
            "sleep_goal": 27000 if n >= 100 else 28800,
            "sleep_rating": 0,
            "hypnogram": {
                "23:10": 2,
                "23:30": 3,
                "00:10": 0,
                "00:12": 4,
                "02:00": 0,
                "02:01": 0,
                "02:03": 1,
                "07:05": 0,
            },
        }
        if n == 12:
            del night["sleep_goal"]  # the default need of 8 h applies
        if n == BAD_SLEEP_DAY:
            night["sleep_score"] = "eighty"
        if n != NO_SLEEP_WORKOUT_DAY:
            streams["sleep"].append(("edge", d.isoformat(), d, night))

        recharge: dict[str, Any] = {
            "polar_user": "https://polaraccesslink.com/v3/users/1",
            "date": d.isoformat(),
            "heart_rate_avg": _overnight_hr(n),
            "beat_to_beat_avg": 0 if n == 33 else 1000,
            "heart_rate_variability_avg": 900 if n == BAD_RECHARGE_DAY else _hrv_ms(n),
            "breathing_rate_avg": 0 if n == 8 else round(13.0 + 0.1 * (n % 9), 1),
            "nightly_recharge_status": 1 + n % 6,
            "ans_charge": round(-3.0 + 0.25 * (n % 25), 1),
            "ans_charge_status": 1 + n % 5,
        }
        streams["nightly_recharge"].append(("edge", d.isoformat(), d, recharge))

        activity: dict[str, Any] = {
            "start_time": f"{d.isoformat()}T00:00",
            "end_time": f"{d.isoformat()}T23:59:59",
            "active_duration": "P" if n == BAD_ACTIVITY_DAY else "PT3H12M30S",
            "inactive_duration": "PT9H",
            "daily_activity": 80.5,
            "calories": 2400 + n,
            "active_calories": 700 + n,
            "steps": _steps(n),
            "inactivity_alert_count": 0,
            "distance_from_steps": 5000.0,
        }
        streams["activity"].append(("edge", d.isoformat(), d, activity))

        if n >= 45 and n % 3 == 0:
            exercise_id = f"ex{n:03d}"
            exercise: dict[str, Any] = {
                "id": exercise_id,
                "upload_time": f"{d.isoformat()}T20:00:00Z",
                "device": "Polar Test",
                "device_id": device,
                "start_time": f"{d.isoformat()}T17:{n % 60:02d}:00",
                "start_time_utc_offset": 120,
                "duration": f"PT{1800 + 10 * n}.5S",
                "calories": 400,
                "heart_rate": {"average": 140, "maximum": 0 if n == 48 else 170},
                "sport": "RUNNING",
                "detailed_sport_info": "RUNNING",
                "training_load_pro": {
                    "cardio-load": 40.0 + (n % 13) * 3.5,
                    "muscle-load": -1.0,
                    "perceived-load": 0.0,
                },
            }
            if n == 54:
                exercise["training_load_pro"]["cardio-load"] = -1.0
                exercise["training_load"] = 77.25  # the legacy load takes over
            if n == 57:
                del exercise["training_load_pro"]  # no load at all: counts as 0
            if n == BAD_EXERCISE_DAY:
                exercise["duration"] = "soon"
            streams["exercises"].append(("edge", exercise_id, d, exercise))
            if n == NO_SLEEP_WORKOUT_DAY:  # a second workout, started earlier, on another device
                second = dict(
                    exercise, id="ex063b", start_time=f"{d.isoformat()}T06:00:00", device_id="CCCC0003"
                )
                streams["exercises"].append(("edge", "ex063b", d, second))
    zoned_day = day(ZONED_EXERCISE_DAY)
    zoned = {
        "id": "zoned01",
        "device_id": "AAAA0001",
        "start_time": f"{zoned_day.isoformat()}T22:30:00Z",
        "start_time_utc_offset": 180,
        "duration": "PT1H",
        "training_load_pro": {"cardio-load": 33.0, "muscle-load": 10.0, "perceived-load": 2.0},
    }
    streams["exercises"].append(("edge", "zoned01", zoned_day, zoned))

    lonely_day = day(20)
    streams["activity"].append(
        (
            "lonely",
            lonely_day.isoformat(),
            lonely_day,
            {"start_time": f"{lonely_day.isoformat()}T00:00", "steps": 1234},
        )
    )
    return streams


def write_edge_payloads(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Insert the payloads into raw.*; returns them as the reference reads them."""
    raw: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for stream, rows in edge_payloads().items():
        raw[stream] = []
        for user, key, row_day, payload in rows:
            text = json.dumps(payload)
            if stream == "exercises":
                con.execute(
                    "INSERT INTO raw.exercises VALUES (?, ?, ?, ?, 'test', now())", [user, key, row_day, text]
                )
            else:
                con.execute(
                    f"INSERT INTO raw.{stream} VALUES (?, ?, ?, 'test', now())", [user, row_day, text]
                )
            raw[stream].append((user, payload))
    return raw
