"""An independent re-implementation of every mart in plain Python + numpy/scipy, straight from the raw JSON.

Nothing here reads the SQL or the staging views: payloads are parsed with ``json``/``re``; statistics use
``numpy.percentile`` (linear = Hyndman-Fan type 7), ``numpy.std(ddof=1)``,
``scipy.stats.median_abs_deviation`` and a recursive EWMA (the SQL uses an equivalent weighted sum), so
agreement to 1e-9 is evidence both are right. The documented rules (docs/sql.md) are restated as constants.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
from scipy import stats

BASELINE_METRICS = (
    "ln_rmssd",
    "hrv_rmssd_ms",
    "sleep_score",
    "sleep_seconds",
    "overnight_hr_bpm",
    "breathing_rate",
    "steps",
    "training_load",
)
ANOMALY_METRICS = ("ln_rmssd", "overnight_hr_bpm", "breathing_rate", "sleep_seconds", "steps")
MIN_IQR = {
    "ln_rmssd": 0.05,
    "hrv_rmssd_ms": 3.0,
    "sleep_score": 3.0,
    "sleep_seconds": 900.0,
    "overnight_hr_bpm": 2.0,
    "breathing_rate": 0.5,
    "steps": 500.0,
    "training_load": 10.0,
}
ROLLING_WINDOWS = (7, 30, 90)
BASELINE_DAYS = 60
HRV_REFERENCE = (66, 7)  # days [day - 66, day - 7]
DEFAULT_SLEEP_NEED = 28800
TOLERANCE = 1e-9

RawRows = Mapping[str, Sequence[tuple[str, dict[str, Any]]]]
"""stream -> [(user_id, payload)] as stored in raw.* (exercises carry their id in the payload)."""


# ------------------------------------------------------------------------------------------- parsing


def _number(payload: Mapping[str, Any], key: str) -> float | None:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _without_sentinel(value: float | None, sentinel: float) -> float | None:
    return None if value is None or value == sentinel else value


def iso_duration_seconds(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    match = re.fullmatch(
        r"P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?",
        text,
    )
    if match is None or text.endswith("T") or not any(match.groups()):
        return None
    units = (604800.0, 86400.0, 3600.0, 60.0, 1.0)
    return sum(float(part) * unit for part, unit in zip(match.groups(), units, strict=True) if part)


def interruptions_from_hypnogram(hypnogram: Mapping[str, Any]) -> int:
    """Wake runs that start after a sleep stage and end before the last sleep stage (JSON order)."""
    asleep = [value != 0 for value in hypnogram.values()]
    if not any(asleep):
        return 0
    last_sleep = max(i for i, flag in enumerate(asleep) if flag)
    return sum(1 for i in range(1, len(asleep)) if not asleep[i] and asleep[i - 1] and i < last_sleep)


def sleep_is_typable(p: Mapping[str, Any]) -> bool:
    """The checks the edge-case data exercises: required fields, types and ranges of the used fields."""
    if not isinstance(p, dict) or not isinstance(p.get("date"), str):
        return False
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", p["date"]):
        return False
    score = p.get("sleep_score")
    if score is not None and (
        _number(p, "sleep_score") is None or not 0 <= score <= 100 or score != int(score)
    ):
        return False
    return all(isinstance(p.get(key), str) for key in ("sleep_start_time", "sleep_end_time"))


def recharge_is_typable(p: Mapping[str, Any]) -> bool:
    if not isinstance(p, dict) or not isinstance(p.get("date"), str):
        return False
    hrv = p.get("heart_rate_variability_avg")
    return hrv is None or (
        _number(p, "heart_rate_variability_avg") is not None and (hrv == 0 or 1 <= hrv <= 500)
    )


def activity_is_typable(p: Mapping[str, Any]) -> bool:
    if not isinstance(p, dict) or not isinstance(p.get("start_time"), str):
        return False
    durations = (p.get(key) for key in ("active_duration", "inactive_duration"))
    return all(value is None or iso_duration_seconds(value) is not None for value in durations)


def exercise_is_typable(p: Mapping[str, Any]) -> bool:
    if not isinstance(p, dict) or not isinstance(p.get("start_time"), str):
        return False
    if not re.fullmatch(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?", p["start_time"]
    ):
        return False
    return p.get("duration") is None or iso_duration_seconds(p["duration"]) is not None


@dataclass
class Daily:
    """One user's daily_metrics on a calendar index from the first to the last day with data."""

    user_id: str
    first_day: date
    rows: list[dict[str, Any]] = field(default_factory=list)

    def day_index(self, day: date) -> int:
        return (day - self.first_day).days

    @property
    def days(self) -> list[date]:
        return [row["day"] for row in self.rows]

    def series(self, column: str) -> np.ndarray:
        return np.array([np.nan if row[column] is None else float(row[column]) for row in self.rows])

    def devices(self) -> list[str | None]:
        return [row["device_id"] for row in self.rows]


def daily_metrics(raw: RawRows) -> dict[str, Daily]:
    sleep: dict[tuple[str, date], dict[str, Any]] = {}
    for user, p in raw.get("sleep", ()):
        if not sleep_is_typable(p):
            continue
        light, deep, rem = (_number(p, key) for key in ("light_sleep", "deep_sleep", "rem_sleep"))
        unrecognized = _number(p, "unrecognized_sleep_stage")
        hypnogram = p.get("hypnogram")
        stages = None if light is None or deep is None or rem is None else light + deep + rem
        heart_rates = [
            float(bpm)
            for bpm in (p.get("heart_rate_samples") or {}).values()
            if isinstance(bpm, int | float) and not isinstance(bpm, bool) and bpm > 0
        ]
        sleep[(user, date.fromisoformat(p["date"]))] = {
            "sleep_start": datetime.fromisoformat(p["sleep_start_time"]),
            "sleep_end": datetime.fromisoformat(p["sleep_end_time"]),
            "sleep_hr_avg_bpm": float(np.mean(heart_rates)) if heart_rates else None,
            "sleep_hr_min_bpm": min(heart_rates) if heart_rates else None,
            "sleep_hr_max_bpm": max(heart_rates) if heart_rates else None,
            "sleep_seconds": None if stages is None else stages + (unrecognized or 0.0),
            "light_sleep_seconds": light,
            "deep_sleep_seconds": deep,
            "rem_sleep_seconds": rem,
            "sleep_score": _number(p, "sleep_score"),
            "continuity": _without_sentinel(_number(p, "continuity"), 0),
            "interruptions": interruptions_from_hypnogram(hypnogram) if isinstance(hypnogram, dict) else None,
            "interruption_seconds": _number(p, "total_interruption_duration"),
            "sleep_goal_seconds": _number(p, "sleep_goal"),
            "device_id": p.get("device_id") if isinstance(p.get("device_id"), str) else None,
            "unrecognized_sleep_seconds": unrecognized,
            "short_interruption_seconds": _number(p, "short_interruption_duration"),
            "long_interruption_seconds": _number(p, "long_interruption_duration"),
            "sleep_cycles": _number(p, "sleep_cycles"),
            "continuity_class": _without_sentinel(_number(p, "continuity_class"), 0),
            "sleep_charge": _without_sentinel(_number(p, "sleep_charge"), -1),
            "sleep_rating": _without_sentinel(_number(p, "sleep_rating"), 0),
            "group_duration_score": _number(p, "group_duration_score"),
            "group_solidity_score": _number(p, "group_solidity_score"),
            "group_regeneration_score": _number(p, "group_regeneration_score"),
        }
    recharge: dict[tuple[str, date], dict[str, Any]] = {}
    for user, p in raw.get("nightly_recharge", ()):
        if not recharge_is_typable(p):
            continue
        hrv = _without_sentinel(_number(p, "heart_rate_variability_avg"), 0)
        recharge[(user, date.fromisoformat(p["date"]))] = {
            "hrv_rmssd_ms": hrv,
            "ln_rmssd": None if hrv is None else float(np.log(hrv)),
            "overnight_hr_bpm": _without_sentinel(_number(p, "heart_rate_avg"), 0),
            "breathing_rate": _without_sentinel(_number(p, "breathing_rate_avg"), 0),
            "ans_charge": _number(p, "ans_charge"),
            "nightly_recharge_status": _number(p, "nightly_recharge_status"),
            "ans_charge_status": _number(p, "ans_charge_status"),
            "beat_to_beat_ms": _without_sentinel(_number(p, "beat_to_beat_avg"), 0),
        }
    activity: dict[tuple[str, date], dict[str, Any]] = {}
    for user, p in raw.get("activity", ()):
        if not activity_is_typable(p):
            continue
        activity[(user, date.fromisoformat(p["start_time"][:10]))] = {
            "steps": _number(p, "steps"),
            "active_calories": _number(p, "active_calories"),
            "total_calories": _number(p, "calories"),
            "active_seconds": iso_duration_seconds(p.get("active_duration")),
            "inactive_seconds": iso_duration_seconds(p.get("inactive_duration")),
            "distance_m": _number(p, "distance_from_steps"),
            "daily_activity_percent": _number(p, "daily_activity"),
            "inactivity_alerts": _number(p, "inactivity_alert_count"),
        }
    heart_rate = {
        (user, date.fromisoformat(p["date"])): continuous_heart_rate_summary(p)
        for user, p in raw.get("continuous_heart_rate", ())
    }
    polar_load = {
        (user, date.fromisoformat(p["date"])): polar_cardio_load(p) for user, p in raw.get("cardio_load", ())
    }
    sessions: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
    for user, p in raw.get("exercises", ()):
        if not exercise_is_typable(p):
            continue
        local, _ = exercise_local_start(p)
        pro = p.get("training_load_pro") or {}
        cardio = pro.get("cardio-load", pro.get("cardio_load"))
        cardio = (
            None if isinstance(cardio, bool) or not isinstance(cardio, int | float) or cardio < 0 else cardio
        )
        legacy = _number(p, "training_load")
        sessions[(user, local.date())].append(
            {
                "id": str(p["id"]),
                "start": local,
                "seconds": iso_duration_seconds(p.get("duration")) or 0.0,
                "load": cardio
                if cardio is not None
                else (legacy if legacy is not None and legacy >= 0 else 0.0),
                "cardio": cardio or 0.0,
                "device_id": p.get("device_id") if isinstance(p.get("device_id"), str) else None,
            }
        )

    result: dict[str, Daily] = {}
    seen: dict[str, list[date]] = defaultdict(list)  # the calendar spans every raw record, typable or not
    for stream, rows in raw.items():
        for user, p in rows:
            if stream == "cardio_load" and p.get("cardio_load_status") == CARDIO_NOT_AVAILABLE:
                continue  # Polar lists such placeholder days back 180 days: they are no data
            seen[user].append(ingest_day(stream, p))
    for user, days in sorted(seen.items()):
        daily = Daily(user_id=user, first_day=min(days))
        day = min(days)
        while day <= max(days):
            key = (user, day)
            s, r, a = sleep.get(key, {}), recharge.get(key, {}), activity.get(key, {})
            hr, load = heart_rate.get(key, {}), polar_load.get(key, {})
            workouts = sorted(sessions.get(key, []), key=lambda w: w["id"])
            by_start = sorted(
                (w for w in workouts if w["device_id"] is not None), key=lambda w: (w["start"], w["id"])
            )
            daily.rows.append(
                {
                    "user_id": user,
                    "day": day,
                    **{
                        column: s.get(column)
                        for column in (
                            "sleep_start",
                            "sleep_end",
                            "sleep_hr_avg_bpm",
                            "sleep_hr_min_bpm",
                            "sleep_hr_max_bpm",
                            "sleep_seconds",
                            "light_sleep_seconds",
                            "deep_sleep_seconds",
                            "rem_sleep_seconds",
                            "sleep_score",
                            "continuity",
                            "interruptions",
                            "interruption_seconds",
                            "sleep_goal_seconds",
                            "unrecognized_sleep_seconds",
                            "short_interruption_seconds",
                            "long_interruption_seconds",
                            "sleep_cycles",
                            "continuity_class",
                            "sleep_charge",
                            "sleep_rating",
                            "group_duration_score",
                            "group_solidity_score",
                            "group_regeneration_score",
                        )
                    },
                    **{
                        column: r.get(column)
                        for column in (
                            "hrv_rmssd_ms",
                            "ln_rmssd",
                            "overnight_hr_bpm",
                            "breathing_rate",
                            "ans_charge",
                            "nightly_recharge_status",
                            "ans_charge_status",
                            "beat_to_beat_ms",
                        )
                    },
                    **{column: a.get(column) for column in ACTIVITY_COLUMNS},
                    "exercise_count": len(workouts),
                    "exercise_seconds": float(sum(w["seconds"] for w in workouts)),
                    "training_load": float(sum(w["load"] for w in workouts)),
                    "cardio_load": float(sum(w["cardio"] for w in workouts)),
                    "device_id": s.get("device_id") or (by_start[0]["device_id"] if by_start else None),
                    **{column: hr.get(column) for column in HEART_RATE_COLUMNS},
                    **{column: load.get(column) for column in POLAR_LOAD_COLUMNS},
                }
            )
            day += timedelta(days=1)
        result[user] = daily
    return result


ACTIVITY_COLUMNS = (
    "steps",
    "active_calories",
    "total_calories",
    "active_seconds",
    "inactive_seconds",
    "distance_m",
    "daily_activity_percent",
    "inactivity_alerts",
)
HEART_RATE_COLUMNS = ("hr_min_bpm", "hr_avg_bpm", "hr_max_bpm", "hr_sample_count")
POLAR_LOAD_COLUMNS = (
    "polar_cardio_load",
    "polar_cardio_load_ratio",
    "polar_cardio_load_status",
    "polar_strain",
    "polar_tolerance",
)
CARDIO_NOT_AVAILABLE = "LOAD_STATUS_NOT_AVAILABLE"


def continuous_heart_rate_summary(p: Mapping[str, Any]) -> dict[str, Any]:
    """The day's samples with a reading (0 = no signal left out): lowest, mean, highest and how many."""
    readings = [
        float(sample["heart_rate"])
        for sample in p.get("heart_rate_samples") or []
        if _number(sample, "heart_rate") is not None and sample["heart_rate"] > 0
    ]
    return {
        "hr_min_bpm": min(readings) if readings else None,
        "hr_avg_bpm": statistics.fmean(readings) if readings else None,
        "hr_max_bpm": max(readings) if readings else None,
        "hr_sample_count": len(readings),
    }


def polar_cardio_load(p: Mapping[str, Any]) -> dict[str, Any]:
    """Polar's day: -1.0 means not available for load, tolerance and ratio; strain 0.0 on such a day too."""
    available = p.get("cardio_load_status") != CARDIO_NOT_AVAILABLE
    return {
        "polar_cardio_load": _without_sentinel(_number(p, "cardio_load"), -1),
        "polar_cardio_load_ratio": _without_sentinel(_number(p, "cardio_load_ratio"), -1),
        "polar_cardio_load_status": p.get("cardio_load_status"),
        "polar_strain": _number(p, "strain") if available else None,
        "polar_tolerance": _without_sentinel(_number(p, "tolerance"), -1),
    }


def ingest_day(stream: str, p: Mapping[str, Any]) -> date:
    """The day the sync client files a record under in raw.* (its ``day`` column)."""
    if stream in ("sleep", "nightly_recharge", "continuous_heart_rate", "cardio_load"):
        return date.fromisoformat(p["date"])
    return date.fromisoformat(p["start_time"][:10])


def exercise_local_start(p: Mapping[str, Any]) -> tuple[datetime, int | None]:
    """The watch's local start: naive start_time as written; a zoned one moved to start_time_utc_offset."""
    text = p["start_time"]
    match = re.fullmatch(r"(.*?)(Z|[+-]\d{2}:?\d{2})?", text)
    assert match is not None
    wall = datetime.fromisoformat(match[1])
    offset = p.get("start_time_utc_offset")
    if match[2] is None or offset is None:
        return wall, offset
    zone = (
        0
        if match[2] == "Z"
        else (1 if match[2][0] == "+" else -1) * (int(match[2][1:3]) * 60 + int(match[2][-2:]))
    )
    return wall - timedelta(minutes=zone) + timedelta(minutes=offset), offset


ALTITUDE_DEAD_BAND_M = 1.0
"""A rise or fall of the altitude series counts once it reaches this far from the last level counted."""


def _either(mapping: Mapping[str, Any], snake: str, kebab: str) -> Any:
    """A field under its snake_case key, else under its kebab-case one (AccessLink uses both)."""
    value = mapping.get(snake)
    return value if value is not None else mapping.get(kebab)


def altitude_totals(p: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """Ascent and descent of the first altitude series (sample type 3), gaps skipped, with a dead band."""
    samples = p.get("samples")
    series = (
        next(
            (s for s in samples if str(_either(s, "sample_type", "sample-type")) == "3"),
            None,
        )
        if isinstance(samples, list)
        else None
    )
    if series is None or not isinstance(series.get("data"), str):
        return None, None
    levels = []
    for token in series["data"].split(","):
        try:
            value = float(token.strip())
        except ValueError:  # "null": the sensor was offline
            continue
        if math.isfinite(value):
            levels.append(value)
    if not levels:
        return None, None
    level, ascent, descent = levels[0], 0.0, 0.0
    for value in levels[1:]:
        if value - level >= ALTITUDE_DEAD_BAND_M:
            ascent += value - level
            level = value
        elif level - value >= ALTITUDE_DEAD_BAND_M:
            descent += level - value
            level = value
    return ascent, descent


def heart_rate_zones(p: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The zones in either key spelling as the mart's JSON objects, ordered by index."""
    zones = p.get("heart_rate_zones")
    if not isinstance(zones, list):
        return None
    return sorted(
        (
            {
                "index": zone["index"],
                "lower_limit_bpm": _either(zone, "lower_limit", "lower-limit"),
                "upper_limit_bpm": _either(zone, "upper_limit", "upper-limit"),
                "in_zone_seconds": iso_duration_seconds(_either(zone, "in_zone", "in-zone")),
            }
            for zone in zones
        ),
        key=lambda zone: zone["index"],
    )


def exercise_sessions(raw: RawRows) -> dict[tuple[str, str], dict[str, Any]]:
    """marts.exercises: every typable workout's fields straight from its payload, keyed by (user, id)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for user, p in raw.get("exercises", ()):
        if not exercise_is_typable(p):
            continue
        local, payload_offset = exercise_local_start(p)
        zone = re.search(r"(Z|[+-]\d{2}:?\d{2})$", p["start_time"])
        written = None
        if zone is not None:
            text = zone[1].replace(":", "")
            written = (
                0 if text == "Z" else (1 if text[0] == "+" else -1) * (int(text[1:3]) * 60 + int(text[3:5]))
            )
        offset = payload_offset if payload_offset is not None else written
        pro = p.get("training_load_pro") or {}
        cardio = _number(pro, "cardio-load") if "cardio-load" in pro else _number(pro, "cardio_load")
        muscle = _number(pro, "muscle-load") if "muscle-load" in pro else _number(pro, "muscle_load")
        perceived = (
            _number(pro, "perceived-load") if "perceived-load" in pro else _number(pro, "perceived_load")
        )
        heart_rate = p.get("heart_rate") or {}
        legacy = _number(p, "training_load")
        cardio = cardio if cardio is not None and cardio >= 0 else None
        ascent, descent = altitude_totals(p)
        samples = p.get("samples")
        rows[(user, str(p["id"]))] = {
            "day": local.date(),
            "start_time_local": local,
            "start_time_utc": None if offset is None else local - timedelta(minutes=offset),
            "utc_offset_minutes": offset,
            "device_id": p.get("device_id"),
            "sport": p.get("sport"),
            "detailed_sport_info": p.get("detailed_sport_info"),
            "duration_seconds": iso_duration_seconds(p.get("duration")),
            "distance_m": _number(p, "distance"),
            "calories": _number(p, "calories"),
            "hr_avg_bpm": _without_sentinel(_number(heart_rate, "average"), 0),
            "hr_max_bpm": _without_sentinel(_number(heart_rate, "maximum"), 0),
            "cardio_load": cardio,
            "muscle_load": muscle if muscle is not None and muscle >= 0 else None,
            "perceived_load": perceived if perceived is not None and perceived > 0 else None,
            "training_load": cardio if cardio is not None else legacy,
            "ascent_m": ascent,
            "descent_m": descent,
            "running_index": _number(p, "running_index")
            if "running_index" in p
            else _number(p, "running-index"),
            "heart_rate_zones": heart_rate_zones(p),
            "has_samples": isinstance(samples, list) and len(samples) > 0,
            "has_route": p.get("has_route"),
        }
    return rows


# --------------------------------------------------------------------------------------------- marts


def _finite(values: Iterable[float]) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    finite: np.ndarray = array[~np.isnan(array)]
    return finite


def _window(daily: Daily, series: np.ndarray, day: date, first_offset: int, last_offset: int) -> np.ndarray:
    """Values on days [day + first_offset, day + last_offset] that exist in the calendar index."""
    index = daily.day_index(day)
    lo, hi = max(0, index + first_offset), index + last_offset
    if hi < lo:
        return np.array([])
    return series[lo : hi + 1]


def _baseline_device(daily: Daily, day: date, back: int) -> str | None:
    devices = daily.devices()
    index = daily.day_index(day)
    for i in range(index, max(-1, index - back - 1), -1):
        if devices[i] is not None:
            return devices[i]
    return None


def _same_device_mask(daily: Daily, day: date, first_offset: int, last_offset: int, back: int) -> np.ndarray:
    device = _baseline_device(daily, day, back)
    index = daily.day_index(day)
    lo, hi = max(0, index + first_offset), index + last_offset
    devices = daily.devices()[lo : hi + 1]
    return np.array([device is None or d is None or d == device for d in devices], dtype=bool)


def rolling_metrics(dailies: Mapping[str, Daily]) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = {}
    for user, daily in dailies.items():
        for metric in BASELINE_METRICS:
            series = daily.series(metric)
            for day in daily.days:
                for window in ROLLING_WINDOWS:
                    values = _finite(_window(daily, series, day, -(window - 1), 0))
                    n = len(values)
                    rows[(user, day, metric, window)] = {
                        "mean": float(np.mean(values)) if n else None,
                        "sd": float(np.std(values, ddof=1)) if n >= 2 else None,
                        "n": n,
                        "coverage": n / window,
                    }
    return rows


def baselines(dailies: Mapping[str, Daily]) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = {}
    for user, daily in dailies.items():
        for metric in BASELINE_METRICS:
            series = daily.series(metric)
            for day in daily.days:
                window = _window(daily, series, day, -BASELINE_DAYS, -1)
                mask = _same_device_mask(daily, day, -BASELINE_DAYS, -1, BASELINE_DAYS)
                values = _finite(window[mask]) if len(window) else np.array([])
                n = len(values)
                row: dict[str, Any] = {"window_days": BASELINE_DAYS, "n": n}
                if n == 0:
                    row |= dict.fromkeys(
                        ("median", "q1", "q3", "iqr", "mean", "sd", "mad", "robust_sd", "lower_warning",
                         "upper_warning", "lower_critical", "upper_critical"),
                        None,
                    )  # fmt: skip
                else:
                    q1, median, q3 = (float(v) for v in np.percentile(values, [25, 50, 75]))
                    mad = float(stats.median_abs_deviation(values, scale=1.0))
                    spread = max(q3 - q1, MIN_IQR[metric])
                    row |= {
                        "median": median,
                        "q1": q1,
                        "q3": q3,
                        "iqr": q3 - q1,
                        "mean": float(np.mean(values)),
                        "sd": float(np.std(values, ddof=1)) if n >= 2 else None,
                        "mad": mad,
                        "robust_sd": 1.4826 * mad if mad > 0 else spread / 1.349,
                        "lower_warning": q1 - 1.5 * spread,
                        "upper_warning": q3 + 1.5 * spread,
                        "lower_critical": q1 - 3.0 * spread,
                        "upper_critical": q3 + 3.0 * spread,
                    }
                row["status"] = "ready" if n >= 21 else "partial" if n >= 7 else "insufficient"
                rows[(user, day, metric)] = row
    return rows


def anomalies(
    dailies: Mapping[str, Daily], baseline_rows: Mapping[tuple[Any, ...], dict[str, Any]]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = {}
    for user, daily in dailies.items():
        for row in daily.rows:
            for metric in ANOMALY_METRICS:
                value = row[metric]
                base = baseline_rows[(user, row["day"], metric)]
                if value is None or base["status"] == "insufficient":
                    continue
                value = float(value)
                if base["lower_warning"] <= value <= base["upper_warning"]:
                    continue
                critical = value < base["lower_critical"] or value > base["upper_critical"]
                median = base["median"]
                rows[(user, row["day"], metric)] = {
                    "value": value,
                    "severity": "critical" if critical else "warning",
                    "direction": "below" if value < base["lower_warning"] else "above",
                    "robust_z": (value - median) / base["robust_sd"],
                    "deviation_pct": 100 * (value - median) / abs(median) if median != 0 else None,
                    "baseline_median": median,
                }
    return rows


def hrv_status(dailies: Mapping[str, Daily]) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = {}
    back, gap = HRV_REFERENCE
    for user, daily in dailies.items():
        series = daily.series("ln_rmssd")
        for day in daily.days:
            week = _finite(_window(daily, series, day, -6, 0))
            reference_window = _window(daily, series, day, -back, -gap)
            mask = _same_device_mask(daily, day, -back, -gap, back)
            reference = _finite(reference_window[mask]) if len(reference_window) else np.array([])
            n_week, n_reference = len(week), len(reference)
            mean = float(np.mean(reference)) if n_reference else None
            sd = float(np.std(reference, ddof=1)) if n_reference >= 2 else None
            ln_7d = float(np.mean(week)) if n_week >= 3 else None
            cv = 100 * float(np.std(week, ddof=1)) / float(np.mean(week)) if n_week >= 3 else None
            low = mean - 0.5 * sd if n_reference >= 14 and mean is not None and sd is not None else None
            high = mean + 0.5 * sd if n_reference >= 14 and mean is not None and sd is not None else None
            if ln_7d is None or low is None or high is None:
                status = "insufficient"
            else:
                status = "below" if ln_7d < low else "above" if ln_7d > high else "within"
            rows[(user, day)] = {
                "ln_rmssd_7d": ln_7d,
                "n_7d": n_week,
                "normal_low": low,
                "normal_high": high,
                "cv_7d": cv,
                "status": status,
                "n_baseline": n_reference,
                "baseline_mean": mean,
                "baseline_sd": sd,
            }
    return rows


def _ewma(values: np.ndarray, span: int) -> np.ndarray:
    """Williams 2017: ewma_t = lambda * x_t + (1 - lambda) * ewma_(t-1), lambda = 2 / (span + 1), seed 0."""
    smoothing = 2 / (span + 1)
    out = np.empty_like(values)
    level = 0.0
    for i, value in enumerate(values):
        level = smoothing * value + (1 - smoothing) * level
        out[i] = level
    return out


def training_load(dailies: Mapping[str, Daily]) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = {}
    for user, daily in dailies.items():
        load, cardio = daily.series("training_load"), daily.series("cardio_load")
        acute_ewma, chronic_ewma = _ewma(load, 7), _ewma(load, 28)
        for i, day in enumerate(daily.days):
            history = i + 1
            acute = float(np.mean(load[max(0, i - 6) : i + 1]))
            chronic = float(np.mean(load[max(0, i - 27) : i + 1]))
            older = load[max(0, i - 27) : max(0, i - 6)]
            uncoupled = float(np.mean(older)) if len(older) else None
            strain = float(np.mean(cardio[max(0, i - 6) : i + 1]))
            tolerance = float(np.mean(cardio[max(0, i - 27) : i + 1]))
            full = history >= 28
            rows[(user, day)] = {
                "daily_load": float(load[i]),
                "acute_7d": acute if history >= 7 else None,
                "chronic_28d": chronic if full else None,
                "acwr_coupled": acute / chronic if full and chronic > 0 else None,
                "acwr_uncoupled": acute / uncoupled if full and uncoupled else None,
                "ewma_acute": float(acute_ewma[i]),
                "ewma_chronic": float(chronic_ewma[i]),
                "acwr_ewma": float(acute_ewma[i] / chronic_ewma[i]) if full and chronic_ewma[i] > 0 else None,
                "polar_ratio": strain / tolerance if full and tolerance > 0 else None,
            }
    return rows


def sleep_debt(dailies: Mapping[str, Daily]) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = {}
    for user, daily in dailies.items():
        need: list[float | None] = []
        deficit: list[float | None] = []
        for row in daily.rows:
            slept = row["sleep_seconds"]
            night_need = None if slept is None else (row["sleep_goal_seconds"] or DEFAULT_SLEEP_NEED)
            need.append(night_need)
            deficit.append(None if slept is None or night_need is None else max(night_need - slept, 0))
        for i, day in enumerate(daily.days):
            window = [d for d in deficit[max(0, i - 13) : i + 1] if d is not None]
            rows[(user, day)] = {
                "sleep_need_seconds": need[i],
                "deficit_seconds": deficit[i],
                "debt_seconds": float(sum(window)) if window else None,
                "nights": len(window),
            }
    return rows


def all_marts(raw: RawRows) -> dict[str, tuple[tuple[str, ...], dict[tuple[Any, ...], dict[str, Any]]]]:
    """Every mart as (key columns, {key: {column: value}}), for ``assert_table_matches``."""
    dailies = daily_metrics(raw)
    daily_rows = {
        (row["user_id"], row["day"]): {k: v for k, v in row.items() if k not in ("user_id", "day")}
        for daily in dailies.values()
        for row in daily.rows
    }
    baseline_rows = baselines(dailies)
    return {
        "daily_metrics": (("user_id", "day"), daily_rows),
        "rolling_metrics": (("user_id", "day", "metric", "window_days"), rolling_metrics(dailies)),
        "baselines": (("user_id", "day", "metric"), baseline_rows),
        "anomalies": (("user_id", "day", "metric"), anomalies(dailies, baseline_rows)),
        "hrv_status": (("user_id", "day"), hrv_status(dailies)),
        "training_load": (("user_id", "day"), training_load(dailies)),
        "sleep_debt": (("user_id", "day"), sleep_debt(dailies)),
    }


# ----------------------------------------------------------------------------------------- comparison


def _same(expected: Any, actual: Any) -> bool:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return actual is None or (isinstance(actual, float) and math.isnan(actual))
    if actual is None:
        return False
    if isinstance(expected, str | datetime) or isinstance(actual, str | datetime):
        return bool(expected == actual)
    return bool(np.isclose(float(actual), float(expected), rtol=TOLERANCE, atol=TOLERANCE))


def table_rows(
    con: duckdb.DuckDBPyConnection, table: str, key_columns: Sequence[str], where: str = "TRUE"
) -> tuple[list[str], dict[tuple[Any, ...], dict[str, Any]]]:
    cursor = con.execute(f"SELECT * FROM marts.{table} WHERE {where}")
    columns = [column[0] for column in cursor.description or []]
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for values in cursor.fetchall():
        record = dict(zip(columns, values, strict=True))
        key = tuple(record.pop(column) for column in key_columns)
        assert key not in rows, f"{table}: duplicate key {key}"
        rows[key] = record
    return columns, rows


def assert_table_matches(
    con: duckdb.DuckDBPyConnection,
    table: str,
    key_columns: Sequence[str],
    expected: Mapping[tuple[Any, ...], Mapping[str, Any]],
    where: str = "TRUE",
) -> int:
    """Every key and every column agree (numbers to 1e-9, NULL <-> None/NaN); returns the values compared."""
    columns, actual = table_rows(con, table, key_columns, where)
    value_columns = [column for column in columns if column not in key_columns]
    sample = next(iter(expected.values()), None)
    if sample is not None:
        assert set(value_columns) == set(sample), (
            f"{table}: columns {value_columns} vs reference {sorted(sample)}"
        )
    missing, extra = set(expected) - set(actual), set(actual) - set(expected)
    assert not missing and not extra, (
        f"{table}: missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}"
    )
    compared = 0
    mismatches = []
    for key, want in expected.items():
        got = actual[key]
        for column in value_columns:
            compared += 1
            if not _same(want[column], got[column]):
                mismatches.append((key, column, want[column], got[column]))
    assert not mismatches, f"{table}: {len(mismatches)} mismatches, first: {mismatches[:5]}"
    return compared


def load_raw(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The raw payloads back out of a warehouse, parsed with json (for the reference)."""
    raw: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for stream in (
        "sleep",
        "nightly_recharge",
        "activity",
        "exercises",
        "continuous_heart_rate",
        "cardio_load",
    ):
        rows = con.execute(f"SELECT user_id, payload::VARCHAR FROM raw.{stream} ORDER BY ALL").fetchall()
        raw[stream] = [(user, json.loads(text)) for user, text in rows]
    return raw
