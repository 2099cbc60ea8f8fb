"""Cardio load: one day's load, strain, tolerance and the levels they are judged against."""

from __future__ import annotations

from dataclasses import dataclass

from polar_pipeline.accesslink.parsing import Fields, calendar_date, number, text
from polar_pipeline.accesslink.records.base import Record


@dataclass(frozen=True, kw_only=True)
class CardioLoadLevels:
    very_low: float
    low: float
    medium: float
    high: float
    very_high: float


@dataclass(frozen=True, kw_only=True)
class CardioLoadDay(Record):
    """``/v3/users/cardio-load``: a ``LOAD_STATUS_NOT_AVAILABLE`` day has every number ``None``."""

    status: str | None
    cardio_load: float | None
    strain: float | None
    tolerance: float | None
    cardio_load_ratio: float | None
    levels: CardioLoadLevels | None

    @classmethod
    def from_json(cls, obj: object) -> CardioLoadDay:
        f = Fields(obj)
        day = f.req("date", calendar_date)
        status = f.opt("cardio_load_status", text)
        available = status != "LOAD_STATUS_NOT_AVAILABLE"
        load = number(0)
        level_fields = f.nested("cardio_load_level")
        levels = None
        if level_fields is not None and available:
            levels = CardioLoadLevels(
                very_low=level_fields.req("very_low", load),
                low=level_fields.req("low", load),
                medium=level_fields.req("medium", load),
                high=level_fields.req("high", load),
                very_high=level_fields.req("very_high", load),
            )
        return cls(
            key=day.isoformat(),
            day=day,
            payload=f.obj,
            status=status,
            cardio_load=f.opt("cardio_load", load, sentinel=-1),
            strain=f.opt("strain", load) if available else None,
            tolerance=f.opt("tolerance", load, sentinel=-1),
            cardio_load_ratio=f.opt("cardio_load_ratio", load, sentinel=-1),
            levels=levels,
        )
