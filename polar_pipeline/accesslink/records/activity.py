"""Daily activity: one local day's summary and, when asked for, its sparse step, zone and inactivity
samples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from polar_pipeline.accesslink.parsing import (
    Fields,
    any_datetime,
    duration_seconds,
    integer,
    naive_datetime,
    number,
    text,
)
from polar_pipeline.accesslink.records.base import Record


@dataclass(frozen=True, kw_only=True)
class ActivitySamples:
    """``samples`` of a day summary (only when asked for with ``steps`` / ``activity_zones`` flags).

    Step samples drop consecutive repeats and zones are change points, so both are sparse series.
    """

    step_interval_ms: int | None
    total_steps: int | None
    steps: list[tuple[datetime, int | None]]
    zones: list[tuple[datetime, str]]
    inactivity_stamps: list[datetime]

    @classmethod
    def from_fields(cls, f: Fields) -> ActivitySamples:
        step_block = f.nested("steps")
        steps: list[tuple[datetime, int | None]] = []
        if step_block is not None:
            steps = [
                (s.req("timestamp", naive_datetime), s.opt("steps", integer(0)))
                for s in step_block.items("samples")
            ]
        zone_block = f.nested("activity_zones")
        zones = (
            [(z.req("timestamp", naive_datetime), z.req("zone", text)) for z in zone_block.items("samples")]
            if zone_block is not None
            else []
        )
        stamps_key, stamps_value = f.lookup("inactivity_stamps")
        # Spec: an array of {stamp}; one live client saw {"samples": [{stamp}]}. Accept both.
        if isinstance(stamps_value, dict):
            stamp_items = Fields(stamps_value, f.field_path(stamps_key)).items("samples")
        else:
            stamp_items = f.items("inactivity_stamps")
        return cls(
            step_interval_ms=step_block.opt("interval_ms", integer(1)) if step_block else None,
            total_steps=step_block.opt("total_steps", integer(0)) if step_block else None,
            steps=steps,
            zones=zones,
            inactivity_stamps=[s.req("stamp", naive_datetime) for s in stamp_items],
        )


@dataclass(frozen=True, kw_only=True)
class DailyActivity(Record):
    """``/v3/users/activities``: one day; ``start_time`` is naive *local* midnight (accesslink.md §6.2)."""

    start_time: datetime
    end_time: datetime | None
    active_duration_seconds: float | None
    inactive_duration_seconds: float | None
    daily_activity_percent: float | None
    calories: int | None
    active_calories: int | None
    steps: int | None
    inactivity_alert_count: int | None
    distance_from_steps_meters: float | None
    samples: ActivitySamples | None

    @classmethod
    def from_json(cls, obj: object) -> DailyActivity:
        f = Fields(obj)
        start = f.req("start_time", any_datetime).replace(tzinfo=None)
        end = f.opt("end_time", any_datetime)
        sample_fields = f.nested("samples")
        return cls(
            key=start.date().isoformat(),
            day=start.date(),
            payload=f.obj,
            start_time=start,
            end_time=end.replace(tzinfo=None) if end else None,
            active_duration_seconds=f.opt("active_duration", duration_seconds),
            inactive_duration_seconds=f.opt("inactive_duration", duration_seconds),
            daily_activity_percent=f.opt("daily_activity", number(0)),
            calories=f.opt("calories", integer(0)),
            active_calories=f.opt("active_calories", integer(0)),
            steps=f.opt("steps", integer(0)),
            inactivity_alert_count=f.opt("inactivity_alert_count", integer(0)),
            distance_from_steps_meters=f.opt("distance_from_steps", number(0)),
            samples=ActivitySamples.from_fields(sample_fields) if sample_fields is not None else None,
        )
