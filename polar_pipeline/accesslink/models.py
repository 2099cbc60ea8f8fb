"""Typed AccessLink v3 payloads: one frozen dataclass per resource, parsed strictly from the wire JSON.

Rules (see shared/reference/accesslink-v3.md §4, §9–§11):

* Every record keeps ``payload`` (the JSON object as received), ``day`` (the local calendar day it
  belongs to) and ``key`` (the natural key the warehouse upserts on: the date, or the exercise id).
* Sentinels become ``None`` (sleep continuity/class 0, sleep_charge −1, sleep_rating 0, heart rates 0,
  beat_to_beat 0, cardio −1.0, muscle-load −1.0, perceived-load 0.0), so no analytic averages a sentinel.
* Both key spellings are accepted (``running_index`` / ``running-index``, ``in_zone`` / ``in-zone`` …):
  the API mixes snake and kebab case by resource generation, and the spec differs from the wire.
* ``HH:MM`` series (hypnogram, sleep HR, HRV, breathing) are anchored to the night and roll over at
  midnight in JSON order — string-sorting the keys breaks a night that crosses midnight.
* A record that is missing a required field, has a wrong type or an impossible value raises
  ``PayloadError`` whose reason names the field and the value; ``parse_batch`` turns those into
  ``RejectedRecord`` so one bad record never sinks a batch.
* Hypnogram stage 6 is accepted: Polar's own spec example uses it (a documentation error, §4.1), and
  rejecting a whole night over one stage code would lose the night.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Generic, TypeVar

from polar_pipeline.accesslink.errors import PayloadError

__all__ = [
    "ACTIVITY",
    "CARDIO_LOAD",
    "CONTINUOUS_HR",
    "EXERCISE",
    "NIGHTLY_RECHARGE",
    "SLEEP",
    "ActivitySamples",
    "CardioLoadDay",
    "CardioLoadLevels",
    "ContinuousHeartRateDay",
    "DailyActivity",
    "Exercise",
    "ExerciseSample",
    "HeartRateZone",
    "NightlyRecharge",
    "ParsedBatch",
    "PhysicalInfo",
    "PolarUser",
    "Record",
    "RejectedRecord",
    "RoutePoint",
    "SleepNight",
    "Stream",
    "TokenGrant",
    "TrainingLoadPro",
    "anchor_clock_series",
    "anchor_clock_series_to_day",
    "parse_aware_datetime",
    "parse_batch",
    "parse_date",
    "parse_duration",
    "parse_naive_datetime",
    "parse_timestamp",
]

T = TypeVar("T")
V = TypeVar("V")

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


def _parse_clock(text: object, *, with_seconds: bool) -> time:
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
        clock = _parse_clock(key, with_seconds=False)
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
        clock = _parse_clock(key, with_seconds=False)
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


def _describe(value: object) -> str:
    """The offending value as JSON, shortened: reasons go into logs and quarantine rows."""
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _is_sentinel(value: object, sentinel: object) -> bool:
    """``-1`` matches ``-1.0`` (cardio sentinels are floats); ``false`` never matches ``0``."""
    return sentinel is not _NO_SENTINEL and not isinstance(value, bool) and value == sentinel


def _fail(path: str, value: object, problem: str) -> PayloadError:
    return PayloadError(f"{path}={_describe(value)}: {problem}", field=path)


def integer(lo: int | None = None, hi: int | None = None) -> Converter[int]:
    """Converter for JSON integers (integral floats such as ``66.0`` allowed), optionally range-checked."""

    def convert(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(path, value, "expected an integer")
        if isinstance(value, float) and not value.is_integer():
            raise _fail(path, value, "expected an integer")
        whole = int(value)
        _check_range(path, whole, lo, hi)
        return whole

    return convert


def number(lo: float | None = None, hi: float | None = None) -> Converter[float]:
    """Converter for finite JSON numbers, optionally range-checked."""

    def convert(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(path, value, "expected a number")
        if not math.isfinite(value):
            raise _fail(path, value, "expected a finite number")
        _check_range(path, value, lo, hi)
        return float(value)

    return convert


def _check_range(path: str, value: float, lo: float | None, hi: float | None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        low = "-inf" if lo is None else f"{lo:g}"
        high = "inf" if hi is None else f"{hi:g}"
        raise _fail(path, value, f"outside {low}..{high}")


def text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, value, "expected a string")
    return value


def identifier(value: Any, path: str) -> str:
    """Exercise ids are short strings on ``/v3/exercises`` and int64 on the transactional resources."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise _fail(path, value, "expected a non-empty string or integer id")
    return str(value)


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, value, "expected true or false")
    return value


def _wrap(parse: Callable[[object], T]) -> Converter[T]:
    def convert(value: Any, path: str) -> T:
        try:
            return parse(value)
        except PayloadError as error:
            raise PayloadError(f"{path}: {error.reason}", field=path) from None

    return convert


duration_seconds = _wrap(parse_duration)
calendar_date = _wrap(parse_date)
naive_datetime = _wrap(parse_naive_datetime)
aware_datetime = _wrap(parse_aware_datetime)
any_datetime = _wrap(parse_timestamp)


class _Fields:
    """Typed access to one JSON object; each error names the field path (``heart_rate_zones[2].in_zone``)."""

    def __init__(self, obj: object, path: str = "") -> None:
        if not isinstance(obj, dict):
            raise PayloadError(
                f"{path or 'record'}={_describe(obj)}: expected a JSON object", field=path or None
            )
        self.obj: dict[str, Any] = obj
        self.path = path

    def _lookup(self, name: str) -> tuple[str, Any]:
        """Snake-case name first, then its kebab-case spelling (``running_index`` / ``running-index``)."""
        if name in self.obj:
            return name, self.obj[name]
        kebab = name.replace("_", "-")
        return kebab, self.obj.get(kebab)

    def _field_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def req(self, name: str, convert: Converter[T]) -> T:
        key, value = self._lookup(name)
        if value is None:
            path = self._field_path(name)
            problem = "is null" if key in self.obj else "is missing"
            raise PayloadError(f"required field {path} {problem}", field=path)
        return convert(value, self._field_path(key))

    def opt(self, name: str, convert: Converter[T], *, sentinel: object = _NO_SENTINEL) -> T | None:
        key, value = self._lookup(name)
        if value is None or _is_sentinel(value, sentinel):
            return None
        return convert(value, self._field_path(key))

    def nested(self, name: str) -> _Fields | None:
        key, value = self._lookup(name)
        return None if value is None else _Fields(value, self._field_path(key))

    def items(self, name: str) -> list[_Fields]:
        """A JSON array of objects (``null`` or absent = empty)."""
        key, value = self._lookup(name)
        if value is None:
            return []
        path = self._field_path(key)
        if not isinstance(value, list):
            raise _fail(path, value, "expected a JSON array")
        return [_Fields(item, f"{path}[{index}]") for index, item in enumerate(value)]

    def clock_map(self, name: str) -> tuple[str, dict[str, Any]]:
        key, value = self._lookup(name)
        path = self._field_path(key)
        if value is None:
            return path, {}
        if not isinstance(value, dict):
            raise _fail(path, value, 'expected an object of {"HH:MM": value}')
        return path, value


def _series_values(
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


def _anchored(path: str, anchor: Callable[[], list[tuple[datetime, V]]]) -> list[tuple[datetime, V]]:
    try:
        return anchor()
    except PayloadError as error:
        raise PayloadError(f"{path}: {error.reason}", field=path) from None


# ---------------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Record:
    """What every stored record has: natural key, local day, and the verbatim JSON object."""

    key: str
    day: date
    payload: dict[str, Any] = field(repr=False)


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
        f = _Fields(obj)
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
        stages = _series_values(hypnogram_path, hypnogram, integer(0, 6))
        hr_path, heart_rates = f.clock_map("heart_rate_samples")
        bpm = _series_values(hr_path, heart_rates, integer(*HEART_RATE_RANGE), sentinel=0)
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
                for moment, stage in _anchored(hypnogram_path, lambda: anchor_clock_series(stages, start))
                if stage is not None
            ],
            heart_rate_samples=_anchored(hr_path, lambda: anchor_clock_series(bpm, start)),
        )


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
        f = _Fields(obj)
        night = f.req("date", calendar_date)
        hrv_path, hrv_raw = f.clock_map("hrv_samples")
        hrv = _series_values(hrv_path, hrv_raw, integer(*HRV_RANGE_MS), sentinel=0)
        breathing_path, breathing_raw = f.clock_map("breathing_samples")
        breathing = _series_values(breathing_path, breathing_raw, number(*BREATHING_RANGE), sentinel=0)
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
            hrv_samples=_anchored(hrv_path, lambda: anchor_clock_series_to_day(hrv, night)),
            breathing_samples=_anchored(breathing_path, lambda: anchor_clock_series_to_day(breathing, night)),
        )


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
    def from_fields(cls, f: _Fields) -> ActivitySamples:
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
        stamps_key, stamps_value = f._lookup("inactivity_stamps")
        # Spec: an array of {stamp}; one live client saw {"samples": [{stamp}]}. Accept both.
        if isinstance(stamps_value, dict):
            stamp_items = _Fields(stamps_value, f._field_path(stamps_key)).items("samples")
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
    """``/v3/users/activities``: one day; ``start_time`` is naive *local* midnight (real data, §9)."""

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
        f = _Fields(obj)
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


@dataclass(frozen=True, kw_only=True)
class HeartRateZone:
    index: int
    lower_limit_bpm: int
    upper_limit_bpm: int
    in_zone_seconds: float | None

    @classmethod
    def from_fields(cls, f: _Fields) -> HeartRateZone:
        lower = f.req("lower_limit", integer(0, HEART_RATE_RANGE[1]))
        upper = f.req("upper_limit", integer(0, HEART_RATE_RANGE[1]))
        if upper < lower:
            raise PayloadError(f"{f.path}: upper_limit={upper} is below lower_limit={lower}", field=f.path)
        return cls(
            index=f.req("index", integer(0)),
            lower_limit_bpm=lower,
            upper_limit_bpm=upper,
            in_zone_seconds=f.opt("in_zone", duration_seconds),
        )


@dataclass(frozen=True, kw_only=True)
class ExerciseSample:
    """One sample series; ``values`` has ``None`` where the sensor was offline. Types: §4.7 table."""

    sample_type: int
    recording_rate_seconds: int | None
    values: list[float | None]

    @classmethod
    def from_fields(cls, f: _Fields) -> ExerciseSample:
        raw_type = f._lookup("sample_type")[1]
        if isinstance(raw_type, str) and raw_type.isascii() and raw_type.isdigit():  # spec-style "1"
            sample_type = int(raw_type)
        else:
            sample_type = f.req("sample_type", integer(0))
        return cls(
            sample_type=sample_type,
            recording_rate_seconds=f.opt("recording_rate", integer(0)),
            values=_sample_values(f),
        )


def _sample_values(f: _Fields) -> list[float | None]:
    key, data = f._lookup("data")
    path = f._field_path(key)
    if data is None or data == "":
        return []
    if not isinstance(data, str):
        raise _fail(path, data, "expected a comma-separated string")
    values: list[float | None] = []
    for position, token in enumerate(data.split(",")):
        token = token.strip()
        if token == "null":
            values.append(None)
            continue
        try:
            value = float(token)
        except ValueError:
            raise _fail(f"{path}[{position}]", token, "not a number") from None
        if not math.isfinite(value):
            raise _fail(f"{path}[{position}]", token, "not a finite number")
        values.append(value)
    return values


@dataclass(frozen=True, kw_only=True)
class RoutePoint:
    latitude: float
    longitude: float
    offset_seconds: float | None
    satellites: int | None
    fix: int | None

    @classmethod
    def from_fields(cls, f: _Fields) -> RoutePoint:
        return cls(
            latitude=f.req("latitude", number(-90, 90)),
            longitude=f.req("longitude", number(-180, 180)),
            offset_seconds=f.opt("time", duration_seconds),
            satellites=f.opt("satellites", integer(0, 63)),
            fix=f.opt("fix", integer(0, 3)),
        )


@dataclass(frozen=True, kw_only=True)
class TrainingLoadPro:
    """Kebab-keyed ``training_load_pro``; muscle-load −1.0 (no power), perceived-load 0.0 (no RPE) → None."""

    cardio_load: float | None
    muscle_load: float | None
    perceived_load: float | None
    cardio_load_interpretation: str | None
    muscle_load_interpretation: str | None
    perceived_load_interpretation: str | None
    user_rpe: str | None

    @classmethod
    def from_fields(cls, f: _Fields) -> TrainingLoadPro:
        return cls(
            cardio_load=f.opt("cardio_load", number(0), sentinel=-1),
            muscle_load=f.opt("muscle_load", number(0), sentinel=-1),
            perceived_load=f.opt("perceived_load", number(0), sentinel=0),
            cardio_load_interpretation=f.opt("cardio_load_interpretation", text),
            muscle_load_interpretation=f.opt("muscle_load_interpretation", text),
            perceived_load_interpretation=f.opt("perceived_load_interpretation", text),
            user_rpe=f.opt("user_rpe", text),
        )


@dataclass(frozen=True, kw_only=True)
class Exercise(Record):
    """``/v3/exercises``: one session; ``key`` is the hashed id, ``day`` the local date of ``start_time``.

    ``start_time`` is the watch's wall clock; ``start_time_utc`` = local − ``start_time_utc_offset``.
    """

    upload_time: datetime | None
    polar_user: str | None
    device: str | None
    device_id: str | None
    start_time: datetime
    start_time_utc_offset_minutes: int | None
    start_time_utc: datetime | None
    duration_seconds: float | None
    calories: int | None
    distance_meters: float | None
    heart_rate_average_bpm: int | None
    heart_rate_maximum_bpm: int | None
    training_load: float | None
    sport: str | None
    detailed_sport_info: str | None
    has_route: bool | None
    club_id: int | None
    club_name: str | None
    fat_percentage: float | None
    carbohydrate_percentage: float | None
    protein_percentage: float | None
    running_index: int | None
    training_load_pro: TrainingLoadPro | None
    heart_rate_zones: list[HeartRateZone]
    samples: list[ExerciseSample]
    route: list[RoutePoint]

    @classmethod
    def from_json(cls, obj: object) -> Exercise:
        f = _Fields(obj)
        exercise_id = f.req("id", identifier)
        start = f.req("start_time", any_datetime)
        offset = f.opt("start_time_utc_offset", integer(*UTC_OFFSET_RANGE_MINUTES))
        local_start = start.replace(tzinfo=None)
        if start.tzinfo is not None:  # zoned start_time: its own offset is authoritative
            utc_start: datetime | None = start.astimezone(UTC)
        elif offset is not None:
            utc_start = (local_start - timedelta(minutes=offset)).replace(tzinfo=UTC)
        else:
            utc_start = None
        heart_rate = f.nested("heart_rate")
        bpm = integer(*HEART_RATE_RANGE)
        percent = number(0, 100)
        load_pro = f.nested("training_load_pro")
        return cls(
            key=exercise_id,
            day=local_start.date(),
            payload=f.obj,
            upload_time=f.opt("upload_time", aware_datetime),
            polar_user=f.opt("polar_user", text),
            device=f.opt("device", text),
            device_id=f.opt("device_id", text),
            start_time=local_start,
            start_time_utc_offset_minutes=offset,
            start_time_utc=utc_start,
            duration_seconds=f.opt("duration", duration_seconds),
            calories=f.opt("calories", integer(0)),
            distance_meters=f.opt("distance", number(0)),
            heart_rate_average_bpm=heart_rate.opt("average", bpm, sentinel=0) if heart_rate else None,
            heart_rate_maximum_bpm=heart_rate.opt("maximum", bpm, sentinel=0) if heart_rate else None,
            training_load=f.opt("training_load", number(0)),
            sport=f.opt("sport", text),
            detailed_sport_info=f.opt("detailed_sport_info", text),
            has_route=f.opt("has_route", boolean),
            club_id=f.opt("club_id", integer()),
            club_name=f.opt("club_name", text),
            fat_percentage=f.opt("fat_percentage", percent),
            carbohydrate_percentage=f.opt("carbohydrate_percentage", percent),
            protein_percentage=f.opt("protein_percentage", percent),
            running_index=f.opt("running_index", integer(0, 100)),
            training_load_pro=TrainingLoadPro.from_fields(load_pro) if load_pro is not None else None,
            heart_rate_zones=[HeartRateZone.from_fields(z) for z in f.items("heart_rate_zones")],
            samples=[ExerciseSample.from_fields(s) for s in f.items("samples")],
            route=[RoutePoint.from_fields(p) for p in f.items("route")],
        )


@dataclass(frozen=True, kw_only=True)
class ContinuousHeartRateDay(Record):
    """``/v3/users/continuous-heart-rate``: device-local ``HH:MM:SS`` samples combined with ``date``."""

    polar_user: str | None
    samples: list[tuple[datetime, int | None]]

    @classmethod
    def from_json(cls, obj: object) -> ContinuousHeartRateDay:
        f = _Fields(obj)
        day = f.req("date", calendar_date)
        bpm = integer(*HEART_RATE_RANGE)
        samples: list[tuple[datetime, int | None]] = []
        for sample in f.items("heart_rate_samples"):
            clock = sample.req("sample_time", _wrap(lambda value: _parse_clock(value, with_seconds=True)))
            samples.append((datetime.combine(day, clock), sample.opt("heart_rate", bpm, sentinel=0)))
        return cls(
            key=day.isoformat(), day=day, payload=f.obj, polar_user=f.opt("polar_user", text), samples=samples
        )


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
        f = _Fields(obj)
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


@dataclass(frozen=True, kw_only=True)
class PhysicalInfo(Record):
    """Physical information, transactional kebab form or the 2026 snake ``/v3/users/physical-info``.

    ``key`` is the entry id (transactional) or its ``created`` timestamp; ``day`` the UTC day of ``created``.
    """

    created: datetime
    modified: datetime | None
    weight_kg: float | None
    height_cm: float | None
    maximum_heart_rate: int | None
    resting_heart_rate: int | None
    aerobic_threshold: int | None
    anaerobic_threshold: int | None
    vo2_max: int | None
    weight_source: str | None
    birthday: date | None
    gender: str | None
    training_background: str | None
    typical_day: str | None
    sleep_goal_seconds: float | None

    @classmethod
    def from_json(cls, obj: object) -> PhysicalInfo:
        f = _Fields(obj)
        created = f.req("created", aware_datetime)
        entry_id = f.opt("id", identifier)
        bpm = integer(*HEART_RATE_RANGE)
        return cls(
            key=entry_id or created.isoformat(),
            day=created.astimezone(UTC).date(),
            payload=f.obj,
            created=created,
            modified=f.opt("modified", aware_datetime),
            weight_kg=f.opt("weight", number(0.5, 700)),
            height_cm=f.opt("height", number(20, 300)),
            maximum_heart_rate=f.opt("maximum_heart_rate", bpm),
            resting_heart_rate=f.opt("resting_heart_rate", bpm),
            aerobic_threshold=f.opt("aerobic_threshold", bpm),
            anaerobic_threshold=f.opt("anaerobic_threshold", bpm),
            vo2_max=f.opt("vo2_max", integer(1, 120)),
            weight_source=f.opt("weight_source", text),
            birthday=f.opt("birthday", calendar_date),
            gender=f.opt("gender", text),
            training_background=f.opt("training_background", text),
            typical_day=f.opt("typical_day", text),
            sleep_goal_seconds=f.opt("sleep_goal", duration_seconds),
        )


@dataclass(frozen=True, kw_only=True)
class PolarUser:
    """``/v3/users`` user object (kebab keys); ``extra_info`` maps each ``name`` to its ``value``."""

    polar_user_id: int
    member_id: str | None
    registration_date: datetime | None
    first_name: str | None
    last_name: str | None
    birthdate: date | None
    gender: str | None
    weight_kg: float | None
    height_cm: float | None
    extra_info: dict[str, str]
    payload: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, obj: object) -> PolarUser:
        f = _Fields(obj)
        return cls(
            polar_user_id=f.req("polar_user_id", integer(0)),
            member_id=f.opt("member_id", text),
            registration_date=f.opt("registration_date", aware_datetime),
            first_name=f.opt("first_name", text),
            last_name=f.opt("last_name", text),
            birthdate=f.opt("birthdate", calendar_date),
            gender=f.opt("gender", text),
            weight_kg=f.opt("weight", number(0)),
            height_cm=f.opt("height", number(0)),
            extra_info={item.req("name", text): item.req("value", text) for item in f.items("extra_info")},
            payload=f.obj,
        )


@dataclass(frozen=True, kw_only=True)
class TokenGrant:
    """Token endpoint answer. v3 has no refresh token; the access token lives until revoked."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in_seconds: int | None
    x_user_id: int

    @classmethod
    def from_json(cls, obj: object) -> TokenGrant:
        f = _Fields(obj)
        return cls(
            access_token=f.req("access_token", text),
            token_type=f.opt("token_type", text) or "bearer",
            expires_in_seconds=f.opt("expires_in", integer(0)),
            x_user_id=f.req("x_user_id", integer(0)),
        )


# ---------------------------------------------------------------------------------------------------------
# Batches: list bodies → records + rejected
# ---------------------------------------------------------------------------------------------------------


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


RecordT = TypeVar("RecordT", bound=Record)


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
                return [], f"{stream.container}={_describe(items)}: expected a JSON array"
            return items, None
        return ([], None) if not body else ([body], None)
    return [], f"body={_describe(body)}: expected a JSON array or object"


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
