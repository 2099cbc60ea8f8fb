"""24/7 heart rate (``247ohr_{YYYY}_{MM}-….json``) as AccessLink ``/v3/users/continuous-heart-rate`` days.

A monthly file holds ``deviceDays``: per device and local day, ``samples[{heartRate, secondsFromDayStart}]``
(seconds after local midnight; no time zone in the file). A day recorded by several devices becomes one
record with their samples merged in time order, as AccessLink serves one list per day. ``date`` is
``YYYY-MM-DD`` in current exports and ``{year, month, day}`` in older ones; both are read.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from polar_pipeline.polar_export.values import RecordError, as_object, iso_date, whole_number
from polar_pipeline.warehouse.raw_store import RawRecord

STREAM = "continuous_heart_rate"
PREFIX = "247ohr_"
SECONDS_PER_DAY = 86_400


def is_heart_rate_month(basename: str) -> bool:
    return basename.startswith(PREFIX) and basename.endswith(".json")


def device_days(document: Any) -> list[Any]:
    """The month's ``deviceDays`` entries; ``RecordError`` when the file has none of that shape."""
    days = as_object(document).get("deviceDays")
    if not isinstance(days, list):
        raise RecordError("24/7 heart rate: expected an object with a deviceDays array")
    return days


def day_of(entry: Any) -> date:
    """The entry's local day, from ``"YYYY-MM-DD"`` or ``{year, month, day}``."""
    raw = as_object(entry).get("date")
    if isinstance(raw, dict):
        try:
            return date(int(raw["year"]), int(raw["month"]), int(raw["day"]))
        except (KeyError, TypeError, ValueError):
            pass
    day = iso_date(raw)
    if day is None:
        raise RecordError(f"24/7 heart rate: no usable date ({raw!r})")
    return day


def heart_rate_record(day: date, entries: list[dict[str, Any]], member: str) -> RawRecord:
    """One day's entries (one per device) as one AccessLink-shaped record, samples in time order."""
    samples: list[tuple[int, int]] = []
    for entry in entries:
        for sample in entry.get("samples") or []:
            if not isinstance(sample, dict):
                continue
            second = whole_number(sample.get("secondsFromDayStart"))
            bpm = whole_number(sample.get("heartRate"))
            if second is None or bpm is None or not 0 <= second < SECONDS_PER_DAY:
                raise RecordError(
                    f"24/7 heart rate: sample without a heart rate or a time within the day ({sample!r})",
                    day=day,
                    key=day.isoformat(),
                )
            samples.append((second, bpm))
    samples.sort()
    payload = {
        "date": day.isoformat(),
        "heart_rate_samples": [
            {"heart_rate": bpm, "sample_time": f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"}
            for s, bpm in samples
        ],
        "export_member": member,
        "export_devices": sorted({str(e.get("deviceId")) for e in entries if e.get("deviceId") is not None}),
    }
    return RawRecord(day.isoformat(), day, json.dumps(payload, ensure_ascii=False))
