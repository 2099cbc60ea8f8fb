"""What every page builder shares: the request's context, the page envelope and how numbers are written."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, TypeVar

from polar_api.dashboard.model import PageData, SnapshotFacts, Trace
from polar_api.dashboard.window import Window, on_calendar


@dataclass(frozen=True)
class PageContext:
    """Whose page, which days, and which snapshot answers."""

    user_id: str
    window: Window
    now: datetime
    snapshot: SnapshotFacts


def envelope(slug: str, title: str, context: PageContext, as_of: date | None) -> PageData:
    """An empty page for ``context``; the builder fills its cards, charts and tables."""
    return PageData(
        page=slug,
        title=title,
        user_id=context.user_id,
        range=context.window.range_key,
        since=context.window.since,
        until=context.window.until,
        as_of=as_of,
        snapshot=context.snapshot,
    )


MISSING = "—"
"""How a missing value is written in a card."""


def number(value: float | None, digits: int = 0, unit: str = "") -> str:
    """``value`` rounded for reading, with its unit; the dash when it is missing."""
    if value is None or not math.isfinite(value):
        return MISSING
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".rstrip() if unit else text


def ms_from_ln(value: float | None) -> float | None:
    """rMSSD in ms from its natural log (a geometric mean when ``value`` is a mean of logs)."""
    if value is None:
        return None
    try:
        return math.exp(value)
    except OverflowError:
        return None


def hours(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 3600.0


def duration_text(seconds: float | None) -> str:
    """A duration as a person says it: "2 h 05 min", "45 min", "3 days"."""
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    seconds = max(0.0, seconds)
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    total_minutes = round(seconds / 60)
    whole_hours, minutes = divmod(total_minutes, 60)
    if whole_hours == 0:
        return f"{minutes} min"
    return f"{whole_hours} h {minutes:02d} min"


def ago(moment: datetime | None, now: datetime) -> str:
    """ "3 h 10 min ago" (or "never")."""
    if moment is None:
        return "never"
    return f"{duration_text((now - moment).total_seconds())} ago"


def label(name: str) -> str:
    """A snake_case name as words: ``overnight_hr_bpm`` -> "overnight hr bpm"."""
    return name.replace("_", " ")


METRIC_LABELS = {
    "ln_rmssd": "HRV (ln rMSSD)",
    "hrv_rmssd_ms": "HRV (rMSSD, ms)",
    "overnight_hr_bpm": "Overnight heart rate",
    "resting_hr": "Overnight heart rate",
    "breathing_rate": "Breathing rate",
    "sleep_score": "Sleep score",
    "sleep_seconds": "Sleep duration",
    "steps": "Steps",
    "training_load": "Training load",
    "hrv": "HRV",
    "overnight_hr": "Overnight heart rate",
    "sleep": "Sleep",
}
"""How the analytics' metric and component names read on a page."""


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, label(name).capitalize())


def metric_value(name: str, value: float | None) -> str:
    """A metric's value in the unit a person reads it in (sleep in hours, HRV also in ms)."""
    if value is None:
        return MISSING
    if name == "ln_rmssd":
        return f"{number(value, 2)} ({number(ms_from_ln(value), unit='ms')})"
    if name == "sleep_seconds":
        return number(hours(value), 1, "h")
    units = {"overnight_hr_bpm": (0, "bpm"), "breathing_rate": (1, "/min"), "hrv_rmssd_ms": (0, "ms")}
    digits, unit = units.get(name, (0, ""))
    return number(value, digits, unit)


class _Dated(Protocol):
    @property
    def day(self) -> date: ...


DatedRow = TypeVar("DatedRow", bound=_Dated)


def band_traces(
    name: str,
    window: Window,
    rows: Iterable[DatedRow],
    low: Callable[[DatedRow], float | None],
    high: Callable[[DatedRow], float | None],
) -> list[Trace]:
    """A shaded band (a normal range, a usual range) as the two edge traces the charts fill between."""
    rows = list(rows)
    return [
        Trace(
            name=f"{name}, {edge}",
            kind=f"band_{edge}",
            style="band",
            y=on_calendar(window, rows, lambda row: row.day, value),
        )
        for edge, value in (("low", low), ("high", high))
    ]
