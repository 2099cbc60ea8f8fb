"""The stream registry and batch parsing: which list key and parser each resource kind has, and how a list
body becomes records plus quarantined ``RejectedRecord`` rows, so one bad record never sinks a batch."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic

from polar_pipeline.accesslink.errors import PayloadError
from polar_pipeline.accesslink.parsing import describe, parse_date
from polar_pipeline.accesslink.records import (
    CardioLoadDay,
    ContinuousHeartRateDay,
    DailyActivity,
    Exercise,
    NightlyRecharge,
    RecordT,
    SleepNight,
)

__all__ = [
    "ACTIVITY",
    "CARDIO_LOAD",
    "CONTINUOUS_HR",
    "EXERCISE",
    "NIGHTLY_RECHARGE",
    "SLEEP",
    "ParsedBatch",
    "RejectedRecord",
    "Stream",
    "parse_batch",
]


@dataclass(frozen=True)
class RejectedRecord:
    """A record that failed validation: kept with its JSON text and reason for the quarantine table.

    ``payload`` is the object re-serialised in its received key order (``json.dumps``): verbatim up to
    whitespace and number formatting, which ``json.loads`` does not keep.
    """

    stream: str
    day: date | None
    key: str | None
    payload: str
    reason: str


@dataclass(frozen=True)
class Stream(Generic[RecordT]):
    """One resource kind: its name in ``RejectedRecord.stream``, its list container key, its parser, and
    the field its natural key comes from (``date``, the date part of ``start_time``, or ``id``)."""

    name: str
    container: str | None
    parse: Callable[[object], RecordT]
    key_field: str = "date"


SLEEP = Stream("sleep", "nights", SleepNight.from_json)
NIGHTLY_RECHARGE = Stream("nightly_recharge", "recharges", NightlyRecharge.from_json)
ACTIVITY = Stream("activity", None, DailyActivity.from_json, key_field="start_time")
EXERCISE = Stream("exercise", None, Exercise.from_json, key_field="id")
CONTINUOUS_HR = Stream("continuous_hr", "heart_rates", ContinuousHeartRateDay.from_json)
CARDIO_LOAD = Stream("cardio_load", None, CardioLoadDay.from_json)


@dataclass(frozen=True)
class ParsedBatch(Generic[RecordT]):
    records: list[RecordT]
    rejected: list[RejectedRecord]


def parse_batch(stream: Stream[RecordT], body: object) -> ParsedBatch[RecordT]:
    """Parse a list response (``{"nights": [...]}``, a bare array, one bare record, ``{}`` or ``None``).

    An empty object or ``None`` (204) is "no records" — this also covers extractions such as the
    ``no_data.json`` fixture, where every stream is ``{}``. A body of the wrong shape is one rejection.
    """
    items, container_problem = _unwrap(stream, body)
    if container_problem is not None:
        return ParsedBatch([], [RejectedRecord(stream.name, None, None, _json_text(body), container_problem)])
    records: list[RecordT] = []
    rejected: list[RejectedRecord] = []
    for item in items:
        try:
            records.append(stream.parse(item))
        except PayloadError as error:
            reason = error.reason
        except _UNFORESEEN_VALUE_ERRORS as error:  # e.g. a date at the edge of the calendar: still one record
            reason = f"unparseable record ({type(error).__name__}: {error})"
        else:
            continue
        day, key = _best_effort_identity(stream, item)
        rejected.append(RejectedRecord(stream.name, day, key, _json_text(item), reason))
    return ParsedBatch(records, rejected)


_UNFORESEEN_VALUE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)
"""Errors a strange value may still provoke past validation; one record's problem, never the batch's."""


def _unwrap(stream: Stream[Any], body: object) -> tuple[Iterable[object], str | None]:
    if body is None:
        return [], None
    if isinstance(body, list):
        return body, None
    if isinstance(body, dict):
        if stream.container is not None and stream.container in body:
            items = body[stream.container]
            if items is None:
                return [], None
            if not isinstance(items, list):
                return [], f"{stream.container}={describe(items)}: expected a JSON array"
            return items, None
        return ([], None) if not body else ([body], None)
    return [], f"body={describe(body)}: expected a JSON array or object"


def _best_effort_identity(stream: Stream[Any], item: object) -> tuple[date | None, str | None]:
    """Day and key of a rejected record, as far as they can be read, so the quarantine can be joined.

    The key is taken only from the stream's own key field (never guessed from another field); the day
    falls back to the other timestamps of the record.
    """
    if not isinstance(item, dict):
        return None, None
    raw_key = item.get(stream.key_field)
    if stream.key_field == "id":
        valid_id = isinstance(raw_key, str | int) and not isinstance(raw_key, bool) and raw_key != ""
        key = str(raw_key) if valid_id else None
    else:
        key_day = _leading_date(raw_key)
        key = key_day.isoformat() if key_day else None
    days = (_leading_date(item.get(name)) for name in ("date", "start_time", "sleep_end_time", "end_time"))
    return next((day for day in days if day is not None), None), key


def _leading_date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_date(value[:10])
    except PayloadError:
        return None


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
