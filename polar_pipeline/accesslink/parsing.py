"""Parsing AccessLink wire values: scalars (durations, timestamps, dates, ``HH:MM`` series) and typed field
access whose errors name the field path and the offending value.

The record modules (``accesslink/records/``) build on these; every failure is a ``PayloadError`` so a batch
can quarantine the one record instead of failing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, TypeVar

from polar_pipeline.accesslink.errors import PayloadError

__all__ = [
    "BEAT_TO_BEAT_RANGE_MS",
    "BREATHING_RANGE",
    "HEART_RATE_RANGE",
    "HRV_RANGE_MS",
    "UTC_OFFSET_RANGE_MINUTES",
    "Converter",
    "Fields",
    "anchor_clock_series",
    "anchor_clock_series_to_day",
    "anchored_series",
    "any_datetime",
    "as_converter",
    "aware_datetime",
    "boolean",
    "calendar_date",
    "describe",
    "duration_seconds",
    "field_error",
    "identifier",
    "integer",
    "naive_datetime",
    "number",
    "parse_aware_datetime",
    "parse_clock",
    "parse_date",
    "parse_duration",
    "parse_naive_datetime",
    "parse_timestamp",
    "series_values",
    "text",
]

T = TypeVar("T")
V = TypeVar("V")

# Plausible value ranges: a value outside is an impossible reading, so the record is rejected.
HEART_RATE_RANGE = (20, 250)
HRV_RANGE_MS = (1, 500)
BEAT_TO_BEAT_RANGE_MS = (200, 3000)
BREATHING_RANGE = (1.0, 60.0)
UTC_OFFSET_RANGE_MINUTES = (-12 * 60, 14 * 60)

# ---------------------------------------------------------------------------------------------------------
# Scalars: durations, timestamps, dates
# ---------------------------------------------------------------------------------------------------------

_NUMBER = r"\d+(?:\.\d+)?"
_DURATION_RE = re.compile(
    rf"P(?:(?P<weeks>{_NUMBER})W)?(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?"
)
_DURATION_UNIT_SECONDS = {
    "weeks": 604800.0,
    "days": 86400.0,
    "hours": 3600.0,
    "minutes": 60.0,
    "seconds": 1.0,
}


def parse_duration(text: object) -> float:
    """ISO-8601 duration → seconds: ``PT2460.605S`` (real exercises), ``PT8H33M30S``, ``PT0S``, ``P1DT2H``.

    Years and months are refused: their length in seconds is undefined.
    """
    if not isinstance(text, str):
        raise PayloadError(f"duration {text!r} is not a string")
    match = _DURATION_RE.fullmatch(text)
    if match is None or text.endswith("T") or not any(match.groupdict().values()):
        raise PayloadError(f"duration {text!r} is not an ISO-8601 duration (PnDTnHnMnS)")
    return sum(
        float(value) * _DURATION_UNIT_SECONDS[unit] for unit, value in match.groupdict().items() if value
    )


_TIMESTAMP_RE = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})T(?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)


def parse_timestamp(text: object) -> datetime:
    """Every AccessLink date-time style: naive with or without seconds, fractions, ``Z`` or ``±HH:MM``.

    Returns an aware datetime when the text carries a zone, a naive one otherwise.
    """
    if not isinstance(text, str):
        raise PayloadError(f"timestamp {text!r} is not a string")
    match = _TIMESTAMP_RE.fullmatch(text)
    if match is None:
        raise PayloadError(f"timestamp {text!r} is not ISO-8601 (YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH:MM])")
    zone_text = match["zone"]
    zone: timezone | None = None
    if zone_text == "Z":
        zone = UTC
    elif zone_text:
        sign = -1 if zone_text[0] == "-" else 1
        digits = zone_text[1:].replace(":", "")
        zone = _fixed_zone(sign * (int(digits[:2]) * 60 + int(digits[2:])), text)
    fraction = (match["fraction"] or "").ljust(6, "0")[:6]
    try:
        day = date.fromisoformat(match["date"])
        clock = time(int(match["hour"]), int(match["minute"]), int(match["second"] or 0), int(fraction))
    except ValueError as error:
        raise PayloadError(f"timestamp {text!r} is not a valid date-time: {error}") from None
    return datetime.combine(day, clock, tzinfo=zone)


def _fixed_zone(offset_minutes: int, text: str) -> timezone:
    try:
        return timezone(timedelta(minutes=offset_minutes))
    except ValueError:
        raise PayloadError(f"timestamp {text!r} has an impossible UTC offset") from None


def parse_naive_datetime(text: object) -> datetime:
    """A wall-clock timestamp without zone (activity days, exercise ``start_time``)."""
    value = parse_timestamp(text)
    if value.tzinfo is not None:
        raise PayloadError(f"timestamp {text!r} carries a zone where local wall-clock time is expected")
    return value


def parse_aware_datetime(text: object) -> datetime:
    """A timestamp that must carry ``Z`` or an offset (sleep start/end, upload and registration times)."""
    value = parse_timestamp(text)
    if value.tzinfo is None:
        raise PayloadError(f"timestamp {text!r} has no UTC offset")
    return value


def parse_date(text: object) -> date:
    """``YYYY-MM-DD`` only; ``date.fromisoformat`` alone would also take ``20250926``."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise PayloadError(f"date {text!r} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PayloadError(f"date {text!r} is not a calendar date") from None


def parse_clock(text: object, *, with_seconds: bool) -> time:
    pattern = r"(\d{2}):(\d{2}):(\d{2})" if with_seconds else r"(\d{2}):(\d{2})"
    match = re.fullmatch(pattern, text) if isinstance(text, str) else None
    if match is None:
        raise PayloadError(f"clock time {text!r} is not {'HH:MM:SS' if with_seconds else 'HH:MM'}")
    try:
        hour, minute, *second = (int(part) for part in match.groups())
        return time(hour, minute, second[0] if second else 0)
    except ValueError:
        raise PayloadError(f"clock time {text!r} is out of range") from None


def anchor_clock_series(series: Mapping[str, V], start: datetime) -> list[tuple[datetime, V]]:
    """``{"HH:MM": v}`` in JSON order → ``[(datetime, v)]`` in ``start``'s zone, one day added at each wrap.

    The first key is placed on the day that puts it nearest ``start`` (a key may precede the exact
    start by up to a minute); afterwards the clock going backwards means midnight was crossed.
    """
    anchored: list[tuple[datetime, V]] = []
    previous: datetime | None = None
    for key, value in series.items():
        clock = parse_clock(key, with_seconds=False)
        if previous is None:
            candidates = (
                datetime.combine(start.date() + timedelta(days=shift), clock, tzinfo=start.tzinfo)
                for shift in (-1, 0, 1)
            )
            moment = min(candidates, key=lambda candidate: abs(candidate - start))
        else:
            moment = datetime.combine(previous.date(), clock, tzinfo=start.tzinfo)
            if moment < previous:
                moment += timedelta(days=1)
        anchored.append((moment, value))
        previous = moment
    return anchored


def anchor_clock_series_to_day(series: Mapping[str, V], last_day: date) -> list[tuple[datetime, V]]:
    """Like ``anchor_clock_series`` for series without a start time (Nightly Recharge): the last key
    falls on ``last_day`` (the wake-up date) and a day is subtracted wherever the clock wraps backwards.
    The datetimes are naive local wall-clock time: the recharge payload carries no offset.
    """
    reversed_items = list(series.items())[::-1]
    anchored: list[tuple[datetime, V]] = []
    following: datetime | None = None
    for key, value in reversed_items:
        clock = parse_clock(key, with_seconds=False)
        moment = datetime.combine(following.date() if following else last_day, clock)
        if following is not None and moment > following:
            moment -= timedelta(days=1)
        anchored.append((moment, value))
        following = moment
    return anchored[::-1]


# ---------------------------------------------------------------------------------------------------------
# Field access with precise errors
# ---------------------------------------------------------------------------------------------------------

Converter = Callable[[Any, str], T]
_NO_SENTINEL = object()


def describe(value: object) -> str:
    """The offending value as JSON, shortened: reasons go into logs and quarantine rows."""
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _is_sentinel(value: object, sentinel: object) -> bool:
    """``-1`` matches ``-1.0`` (cardio sentinels are floats); ``false`` never matches ``0``."""
    return sentinel is not _NO_SENTINEL and not isinstance(value, bool) and value == sentinel


def field_error(path: str, value: object, problem: str) -> PayloadError:
    """``path=value: problem``, the reason format every rejected field shares."""
    return PayloadError(f"{path}={describe(value)}: {problem}", field=path)


def integer(lo: int | None = None, hi: int | None = None) -> Converter[int]:
    """Converter for JSON integers (integral floats such as ``66.0`` allowed), optionally range-checked."""

    def convert(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise field_error(path, value, "expected an integer")
        if isinstance(value, float) and not value.is_integer():
            raise field_error(path, value, "expected an integer")
        whole = int(value)
        _check_range(path, whole, lo, hi)
        return whole

    return convert


def number(lo: float | None = None, hi: float | None = None) -> Converter[float]:
    """Converter for finite JSON numbers, optionally range-checked."""

    def convert(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise field_error(path, value, "expected a number")
        if not math.isfinite(value):
            raise field_error(path, value, "expected a finite number")
        _check_range(path, value, lo, hi)
        return float(value)

    return convert


def _check_range(path: str, value: float, lo: float | None, hi: float | None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        low = "-inf" if lo is None else f"{lo:g}"
        high = "inf" if hi is None else f"{hi:g}"
        raise field_error(path, value, f"outside {low}..{high}")


def text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise field_error(path, value, "expected a string")
    return value


def identifier(value: Any, path: str) -> str:
    """Exercise ids are short strings on ``/v3/exercises`` and int64 on the transactional resources."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise field_error(path, value, "expected a non-empty string or integer id")
    return str(value)


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise field_error(path, value, "expected true or false")
    return value


def as_converter(parse: Callable[[object], T]) -> Converter[T]:
    """A scalar parser (``parse_date`` …) as a converter whose errors are prefixed with the field path."""

    def convert(value: Any, path: str) -> T:
        try:
            return parse(value)
        except PayloadError as error:
            raise PayloadError(f"{path}: {error.reason}", field=path) from None

    return convert


duration_seconds = as_converter(parse_duration)
calendar_date = as_converter(parse_date)
naive_datetime = as_converter(parse_naive_datetime)
aware_datetime = as_converter(parse_aware_datetime)
any_datetime = as_converter(parse_timestamp)


class Fields:
    """Typed access to one JSON object; each error names the field path (``heart_rate_zones[2].in_zone``)."""

    def __init__(self, obj: object, path: str = "") -> None:
        if not isinstance(obj, dict):
            raise PayloadError(
                f"{path or 'record'}={describe(obj)}: expected a JSON object", field=path or None
            )
        self.obj: dict[str, Any] = obj
        self.path = path

    def lookup(self, name: str) -> tuple[str, Any]:
        """Snake-case name first, then its kebab-case spelling (``running_index`` / ``running-index``)."""
        if name in self.obj:
            return name, self.obj[name]
        kebab = name.replace("_", "-")
        return kebab, self.obj.get(kebab)

    def field_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def req(self, name: str, convert: Converter[T]) -> T:
        key, value = self.lookup(name)
        if value is None:
            path = self.field_path(name)
            problem = "is null" if key in self.obj else "is missing"
            raise PayloadError(f"required field {path} {problem}", field=path)
        return convert(value, self.field_path(key))

    def opt(self, name: str, convert: Converter[T], *, sentinel: object = _NO_SENTINEL) -> T | None:
        key, value = self.lookup(name)
        if value is None or _is_sentinel(value, sentinel):
            return None
        return convert(value, self.field_path(key))

    def nested(self, name: str) -> Fields | None:
        key, value = self.lookup(name)
        return None if value is None else Fields(value, self.field_path(key))

    def items(self, name: str) -> list[Fields]:
        """A JSON array of objects (``null`` or absent = empty)."""
        key, value = self.lookup(name)
        if value is None:
            return []
        path = self.field_path(key)
        if not isinstance(value, list):
            raise field_error(path, value, "expected a JSON array")
        return [Fields(item, f"{path}[{index}]") for index, item in enumerate(value)]

    def clock_map(self, name: str) -> tuple[str, dict[str, Any]]:
        key, value = self.lookup(name)
        path = self.field_path(key)
        if value is None:
            return path, {}
        if not isinstance(value, dict):
            raise field_error(path, value, 'expected an object of {"HH:MM": value}')
        return path, value


def series_values(
    path: str, series: Mapping[str, Any], convert: Converter[T], *, sentinel: object = _NO_SENTINEL
) -> dict[str, T | None]:
    """Convert every value of a ``{"HH:MM": v}`` object, sentinels to ``None``, keeping JSON order."""
    converted: dict[str, T | None] = {}
    for key, value in series.items():
        if value is None or _is_sentinel(value, sentinel):
            converted[key] = None
        else:
            converted[key] = convert(value, f"{path}[{key!r}]")
    return converted


def anchored_series(path: str, anchor: Callable[[], list[tuple[datetime, V]]]) -> list[tuple[datetime, V]]:
    """Run an anchoring of the series at ``path``; a bad clock key's error is prefixed with that path."""
    try:
        return anchor()
    except PayloadError as error:
        raise PayloadError(f"{path}: {error.reason}", field=path) from None
