"""Continuous heart rate: one day of device-local ``HH:MM:SS`` samples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from polar_pipeline.accesslink.parsing import (
    HEART_RATE_RANGE,
    Fields,
    as_converter,
    calendar_date,
    integer,
    parse_clock,
    text,
)
from polar_pipeline.accesslink.records.base import Record


@dataclass(frozen=True, kw_only=True)
class ContinuousHeartRateDay(Record):
    """``/v3/users/continuous-heart-rate``: device-local ``HH:MM:SS`` samples combined with ``date``."""

    polar_user: str | None
    samples: list[tuple[datetime, int | None]]

    @classmethod
    def from_json(cls, obj: object) -> ContinuousHeartRateDay:
        f = Fields(obj)
        day = f.req("date", calendar_date)
        bpm = integer(*HEART_RATE_RANGE)
        samples: list[tuple[datetime, int | None]] = []
        for sample in f.items("heart_rate_samples"):
            clock = sample.req(
                "sample_time", as_converter(lambda value: parse_clock(value, with_seconds=True))
            )
            samples.append((datetime.combine(day, clock), sample.opt("heart_rate", bpm, sentinel=0)))
        return cls(
            key=day.isoformat(), day=day, payload=f.obj, polar_user=f.opt("polar_user", text), samples=samples
        )
