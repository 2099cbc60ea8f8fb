"""The range a page shows, and laying rows on its calendar so that a missing day stays missing.

A range of N days is the user's local dates today − N … today, both included: the same window as the API's
``days=N`` (so up to N + 1 days), which lets a chart be checked against ``/api/v1`` answers. ``all`` starts
on the user's first day in the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

RANGES: dict[str, int | None] = {"30": 30, "90": 90, "365": 365, "all": None}
"""The ranges a page offers: a number of days back from today, or everything (None)."""
RANGE_LABELS = {"30": "30 days", "90": "90 days", "365": "1 year", "all": "All"}
DEFAULT_RANGE = "90"


class UnknownRange(ValueError):
    def __init__(self, value: str) -> None:
        super().__init__(f"unknown range {value!r}: one of {', '.join(RANGES)}")


@dataclass(frozen=True)
class Window:
    """The days a page covers for one user: ``since`` … ``until`` (the user's today), both included."""

    range_key: str
    since: date
    until: date

    def days(self) -> list[date]:
        """Every calendar day of the window, oldest first."""
        return [self.since + timedelta(days=offset) for offset in range((self.until - self.since).days + 1)]

    def iso_days(self) -> list[str]:
        return [day.isoformat() for day in self.days()]


def window_for(range_key: str, today: date, first_day: date | None) -> Window:
    """The window of ``range_key`` ending on ``today``; ``all`` starts on ``first_day`` (else today)."""
    if range_key not in RANGES:
        raise UnknownRange(range_key)
    days = RANGES[range_key]
    if days is None:
        since = min(first_day, today) if first_day is not None else today
    else:
        since = today - timedelta(days=days)
    return Window(range_key=range_key, since=since, until=today)


Row = TypeVar("Row")


def on_calendar(
    window: Window,
    rows: Iterable[Row],
    day_of: Callable[[Row], date],
    value_of: Callable[[Row], float | None],
) -> list[float | None]:
    """One value per day of ``window``: the row's value on days with a row, None on the others."""
    by_day: Mapping[date, float | None] = {day_of(row): value_of(row) for row in rows}
    return [by_day.get(day) for day in window.days()]


def present(values: Iterable[float | None]) -> int:
    """How many values are not missing."""
    return sum(1 for value in values if value is not None)


def utc_now() -> datetime:
    return datetime.now(UTC)
