"""Exports, shaped like polar-flow-server's ``export/summary`` and ``export/*.csv``.

Every export is built from the same read functions as the list routes, so a CSV row and a list item of the
same day always agree. CSV files run oldest first (a spreadsheet's order); a NULL is an empty cell and a real
0 is written as 0 (polar-flow-server blanks every falsy value, so an ANS charge of 0 looked missing).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import duckdb
from pydantic import BaseModel, Field

from polar_api.read.activity import activity_days
from polar_api.read.cardio_load import cardio_load_days
from polar_api.read.exercises import exercises
from polar_api.read.heart_rate import heart_rate_days
from polar_api.read.recharge import recharge_nights
from polar_api.read.sleep import sleep_nights

Cell = str | int | float | None


class RecordCounts(BaseModel):
    """Records of each kind in the window."""

    sleep: int = Field(description="nights")
    activity: int = Field(description="days with an activity summary")
    recharge: int = Field(description="nights with a Nightly Recharge")
    cardio_load: int = Field(description="days with Polar's cardio load")
    heart_rate: int = Field(description="days with continuous heart rate")
    exercises: int = Field(description="workouts")


class ExportSummary(BaseModel):
    """What an export of the last ``days`` days would hold."""

    user_id: str
    days: int
    from_date: date = Field(description="the window's first local date (today - days)")
    to_date: date = Field(description="the window's last local date (the user's today)")
    record_counts: RecordCounts
    total_records: int


def export_summary(
    cursor: duckdb.DuckDBPyConnection, user_id: str, days: int, since: date, until: date
) -> ExportSummary:
    """Counts of every kind of record in [since, until], read as the list routes read them."""
    counts = RecordCounts(
        sleep=len(sleep_nights(cursor, user_id, since, until)),
        activity=len(activity_days(cursor, user_id, since, until)),
        recharge=len(recharge_nights(cursor, user_id, since, until)),
        cardio_load=len(cardio_load_days(cursor, user_id, since, until)),
        heart_rate=len(heart_rate_days(cursor, user_id, since, until)),
        exercises=len(exercises(cursor, user_id, since, until)),
    )
    return ExportSummary(
        user_id=user_id,
        days=days,
        from_date=since,
        to_date=until,
        record_counts=counts,
        total_records=sum(counts.model_dump().values()),
    )


def _cell(value: Cell) -> str:
    """A CSV cell: empty for NULL, a whole float without its ".0" (so 0.0 is "0"), else the value's text."""
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _hours(seconds_as_hours: float | None) -> float | None:
    return None if seconds_as_hours is None else round(seconds_as_hours, 2)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """A CSV document (header first, CRLF line ends as RFC 4180 and the csv module write them)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


@dataclass(frozen=True)
class CsvExport:
    """One CSV export: its file name stem and how to build it for a user's window."""

    name: str
    build: Callable[[duckdb.DuckDBPyConnection, str, date, date], str]

    def filename(self, days: int) -> str:
        return f"{self.name}_{days}days.csv"


def sleep_csv(cursor: duckdb.DuckDBPyConnection, user_id: str, since: date, until: date) -> str:
    header = ("date", "sleep_score", "total_hours", "deep_hours", "light_hours", "rem_hours", "hrv_avg",
              "heart_rate_avg", "breathing_rate_avg")  # fmt: skip
    nights = reversed(sleep_nights(cursor, user_id, since, until))
    return csv_text(header, (
        (n.date.isoformat(), n.sleep_score, _hours(n.total_sleep_hours), _hours(n.deep_sleep_hours),
         _hours(n.light_sleep_hours), _hours(n.rem_sleep_hours), n.hrv_avg, n.heart_rate_avg,
         n.breathing_rate_avg)
        for n in nights
    ))  # fmt: skip


def activity_csv(cursor: duckdb.DuckDBPyConnection, user_id: str, since: date, until: date) -> str:
    header = ("date", "steps", "calories_active", "calories_total", "distance_km", "active_minutes")
    days = reversed(activity_days(cursor, user_id, since, until))
    return csv_text(header, (
        (d.date.isoformat(), d.steps, d.calories_active, d.calories_total, d.distance_km, d.active_minutes)
        for d in days
    ))  # fmt: skip


def recharge_csv(cursor: duckdb.DuckDBPyConnection, user_id: str, since: date, until: date) -> str:
    """``status`` is the ANS charge status (1-5), as in polar-flow-server's file."""
    header = ("date", "hrv_avg", "ans_charge", "status", "breathing_rate", "heart_rate_avg")
    nights = reversed(recharge_nights(cursor, user_id, since, until))
    return csv_text(header, (
        (n.date.isoformat(), n.hrv_avg, n.ans_charge, n.ans_charge_status, n.breathing_rate_avg,
         n.heart_rate_avg)
        for n in nights
    ))  # fmt: skip


def cardio_load_csv(cursor: duckdb.DuckDBPyConnection, user_id: str, since: date, until: date) -> str:
    header = ("date", "strain", "tolerance", "cardio_load", "load_ratio", "status")
    days = reversed(cardio_load_days(cursor, user_id, since, until))
    return csv_text(header, (
        (d.date.isoformat(), d.strain, d.tolerance, d.cardio_load, d.cardio_load_ratio, d.cardio_load_status)
        for d in days
    ))  # fmt: skip


CSV_EXPORTS = {
    "sleep": CsvExport("sleep", sleep_csv),
    "activity": CsvExport("activity", activity_csv),
    "recharge": CsvExport("recharge", recharge_csv),
    "cardio-load": CsvExport("cardio_load", cardio_load_csv),
}
"""The CSV exports by route (export/<key>.csv), file names as polar-flow-server's (cardio_load_<n>days)."""
