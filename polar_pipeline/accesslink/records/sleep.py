"""Sleep: one night per record, its hypnogram and heart-rate series anchored on the night's start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from polar_pipeline.accesslink.errors import PayloadError
from polar_pipeline.accesslink.parsing import (
    HEART_RATE_RANGE,
    Fields,
    anchor_clock_series,
    anchored_series,
    aware_datetime,
    calendar_date,
    integer,
    number,
    series_values,
    text,
)
from polar_pipeline.accesslink.records.base import Record


@dataclass(frozen=True, kw_only=True)
class SleepNight(Record):
    """``/v3/users/sleep``: one night; ``day`` is the wake-up date. Stages and interruptions in seconds."""

    polar_user: str | None
    device_id: str | None
    sleep_start: datetime
    sleep_end: datetime
    continuity: float | None
    continuity_class: int | None
    light_sleep_seconds: int | None
    deep_sleep_seconds: int | None
    rem_sleep_seconds: int | None
    unrecognized_sleep_seconds: int | None
    sleep_score: int | None
    total_interruption_seconds: int | None
    short_interruption_seconds: int | None
    long_interruption_seconds: int | None
    sleep_charge: int | None
    sleep_goal_seconds: int | None
    sleep_rating: int | None
    sleep_cycles: int | None
    group_duration_score: float | None
    group_solidity_score: float | None
    group_regeneration_score: float | None
    hypnogram: list[tuple[datetime, int]]
    heart_rate_samples: list[tuple[datetime, int | None]]

    @property
    def duration_seconds(self) -> float:
        return (self.sleep_end - self.sleep_start).total_seconds()

    @classmethod
    def from_json(cls, obj: object) -> SleepNight:
        f = Fields(obj)
        night = f.req("date", calendar_date)
        start = f.req("sleep_start_time", aware_datetime)
        end = f.req("sleep_end_time", aware_datetime)
        if end <= start:
            raise PayloadError(
                f"sleep_end_time={f.req('sleep_end_time', text)!r} is not after "
                f"sleep_start_time={f.req('sleep_start_time', text)!r}",
                field="sleep_end_time",
            )
        seconds = integer(0)
        hypnogram_path, hypnogram = f.clock_map("hypnogram")
        stages = series_values(hypnogram_path, hypnogram, integer(0, 6))
        hr_path, heart_rates = f.clock_map("heart_rate_samples")
        bpm = series_values(hr_path, heart_rates, integer(*HEART_RATE_RANGE), sentinel=0)
        return cls(
            key=night.isoformat(),
            day=night,
            payload=f.obj,
            polar_user=f.opt("polar_user", text),
            device_id=f.opt("device_id", text),
            sleep_start=start,
            sleep_end=end,
            continuity=f.opt("continuity", number(1.0, 5.0), sentinel=0),
            continuity_class=f.opt("continuity_class", integer(1, 5), sentinel=0),
            light_sleep_seconds=f.opt("light_sleep", seconds),
            deep_sleep_seconds=f.opt("deep_sleep", seconds),
            rem_sleep_seconds=f.opt("rem_sleep", seconds),
            unrecognized_sleep_seconds=f.opt("unrecognized_sleep_stage", seconds),
            sleep_score=f.opt("sleep_score", integer(0, 100)),
            total_interruption_seconds=f.opt("total_interruption_duration", seconds),
            short_interruption_seconds=f.opt("short_interruption_duration", seconds),
            long_interruption_seconds=f.opt("long_interruption_duration", seconds),
            sleep_charge=f.opt("sleep_charge", integer(1, 5), sentinel=-1),
            sleep_goal_seconds=f.opt("sleep_goal", seconds),
            sleep_rating=f.opt("sleep_rating", integer(1, 5), sentinel=0),
            sleep_cycles=f.opt("sleep_cycles", integer(0)),
            group_duration_score=f.opt("group_duration_score", number(0, 100)),
            group_solidity_score=f.opt("group_solidity_score", number(0, 100)),
            group_regeneration_score=f.opt("group_regeneration_score", number(0, 100)),
            hypnogram=[
                (moment, stage)
                for moment, stage in anchored_series(
                    hypnogram_path, lambda: anchor_clock_series(stages, start)
                )
                if stage is not None
            ],
            heart_rate_samples=anchored_series(hr_path, lambda: anchor_clock_series(bpm, start)),
        )
