"""Nightly Recharge: ANS charge and HRV of one night, with sample series in local wall-clock time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from polar_pipeline.accesslink.parsing import (
    BEAT_TO_BEAT_RANGE_MS,
    BREATHING_RANGE,
    HEART_RATE_RANGE,
    HRV_RANGE_MS,
    Fields,
    anchor_clock_series,
    anchor_clock_series_to_day,
    anchored_series,
    calendar_date,
    integer,
    number,
    series_values,
    text,
)
from polar_pipeline.accesslink.records.base import Record

V = TypeVar("V")


@dataclass(frozen=True, kw_only=True)
class NightlyRecharge(Record):
    """``/v3/users/nightly-recharge``: ANS charge and HRV of one night; ``day`` is the wake-up date.

    Sample series are naive local wall-clock time (the payload has no offset), anchored on ``day``.
    """

    polar_user: str | None
    heart_rate_avg_bpm: int | None
    beat_to_beat_avg_ms: int | None
    hrv_avg_ms: int | None
    breathing_rate_avg: float | None
    nightly_recharge_status: int | None
    ans_charge: float | None
    ans_charge_status: int | None
    hrv_samples: list[tuple[datetime, int | None]]
    breathing_samples: list[tuple[datetime, float | None]]

    def anchored_to(self, sleep_start: datetime) -> NightlyRecharge:
        """A copy whose series are anchored on the night's start (``SleepNight.sleep_start`` of the same
        ``day``) and carry its UTC offset, like the sleep series."""

        def reanchor(series: list[tuple[datetime, V]]) -> list[tuple[datetime, V]]:
            return anchor_clock_series(
                {moment.strftime("%H:%M"): value for moment, value in series}, sleep_start
            )

        return replace(
            self, hrv_samples=reanchor(self.hrv_samples), breathing_samples=reanchor(self.breathing_samples)
        )

    @classmethod
    def from_json(cls, obj: object) -> NightlyRecharge:
        f = Fields(obj)
        night = f.req("date", calendar_date)
        hrv_path, hrv_raw = f.clock_map("hrv_samples")
        hrv = series_values(hrv_path, hrv_raw, integer(*HRV_RANGE_MS), sentinel=0)
        breathing_path, breathing_raw = f.clock_map("breathing_samples")
        breathing = series_values(breathing_path, breathing_raw, number(*BREATHING_RANGE), sentinel=0)
        return cls(
            key=night.isoformat(),
            day=night,
            payload=f.obj,
            polar_user=f.opt("polar_user", text),
            heart_rate_avg_bpm=f.opt("heart_rate_avg", integer(*HEART_RATE_RANGE), sentinel=0),
            beat_to_beat_avg_ms=f.opt("beat_to_beat_avg", integer(*BEAT_TO_BEAT_RANGE_MS), sentinel=0),
            hrv_avg_ms=f.opt("heart_rate_variability_avg", integer(*HRV_RANGE_MS), sentinel=0),
            breathing_rate_avg=f.opt("breathing_rate_avg", number(*BREATHING_RANGE), sentinel=0),
            nightly_recharge_status=f.opt("nightly_recharge_status", integer(1, 6)),
            ans_charge=f.opt("ans_charge", number(-10.0, 10.0)),
            ans_charge_status=f.opt("ans_charge_status", integer(1, 5)),
            hrv_samples=anchored_series(hrv_path, lambda: anchor_clock_series_to_day(hrv, night)),
            breathing_samples=anchored_series(
                breathing_path, lambda: anchor_clock_series_to_day(breathing, night)
            ),
        )
