"""The record base: what every stored AccessLink record has, whatever its stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar


@dataclass(frozen=True, kw_only=True)
class Record:
    """What every stored record has: natural key, local day, and the verbatim JSON object."""

    key: str
    day: date
    payload: dict[str, Any] = field(repr=False)


RecordT = TypeVar("RecordT", bound=Record)
