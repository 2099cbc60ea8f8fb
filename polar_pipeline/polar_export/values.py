"""Small value conversions shared by the family parsers: ISO durations, local clocks, quarantine rows."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from polar_pipeline.warehouse.raw_store import QuarantineRecord

_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


class RecordError(Exception):
    """One export record that cannot become a raw record; becomes a quarantine row with this reason."""

    def __init__(self, reason: str, *, day: date | None = None, key: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.day = day
        self.key = key


def iso_duration_seconds(value: Any) -> float | None:
    """``PT7H30M`` / ``PT2753.875S`` / ``P1DT2H`` as seconds; None when absent or not of that shape."""
    if not isinstance(value, str) or value in ("P", "PT") or value.endswith("T"):
        return None
    match = _ISO_DURATION.match(value)
    if match is None:
        return None
    parts = {name: float(text) if text else 0.0 for name, text in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def seconds_as_iso(seconds: float) -> str:
    """Seconds as AccessLink writes exercise durations: ``PT2071.005S`` (milliseconds kept, no noise)."""
    millis = round(seconds * 1000)
    whole, fraction = divmod(millis, 1000)
    return f"PT{whole}.{fraction:03d}S" if fraction else f"PT{whole}S"


def local_datetime(value: Any) -> datetime | None:
    """A naive local wall-clock time (``2017-01-23T18:20:18.000``, seconds optional); None if not one."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=None) if parsed.tzinfo is None else None


def iso_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def whole_seconds(value: Any) -> int | None:
    """An ISO duration rounded to whole seconds, as AccessLink's integer sleep fields are."""
    seconds = iso_duration_seconds(value)
    return None if seconds is None else round(seconds)


def as_object(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one for anything else (absent means unknown)."""
    return value if isinstance(value, dict) else {}


def first_exercise(document: dict[str, Any]) -> dict[str, Any]:
    """A session's first ``exercises[]`` item (usually the only one), or an empty object."""
    exercises = document.get("exercises")
    if isinstance(exercises, list) and exercises and isinstance(exercises[0], dict):
        return exercises[0]
    return {}


def number(value: Any) -> float | int | None:
    """A JSON number (bool excluded), else None."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def whole_number(value: Any) -> int | None:
    """A number rounded to an integer (Polar writes some integer fields as floats), else None."""
    found = number(value)
    return None if found is None else round(found)


def without_none(payload: dict[str, Any]) -> dict[str, Any]:
    """Absent means unknown: keys whose value is None are left out, as AccessLink omits them."""
    return {key: value for key, value in payload.items() if value is not None}


@dataclass(frozen=True)
class FileProblem:
    """A member that could not be read at all, for ``quarantine_file``."""

    member: str
    reason: str


def quarantine_file(stream: str, problem: FileProblem, excerpt: bytes = b"") -> QuarantineRecord:
    """A whole unreadable member as one quarantine row: its name, the reason and the first bytes of it."""
    payload = {"export_member": problem.member, "excerpt": excerpt[:500].decode("utf-8", "replace")}
    return QuarantineRecord(
        stream, None, None, json.dumps(payload, ensure_ascii=False), f"{problem.member}: {problem.reason}"
    )


def quarantine_record(stream: str, member: str, error: RecordError, record: Any) -> QuarantineRecord:
    """One export record that could not be mapped, with the member it came from."""
    payload = {"export_member": member, "record": record}
    return QuarantineRecord(
        stream,
        error.day,
        error.key,
        json.dumps(payload, ensure_ascii=False, default=str),
        f"{member}: {error.reason}",
    )
