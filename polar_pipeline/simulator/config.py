"""Simulator configuration: what to simulate (``SimulatorConfig``) and which faults (``FaultConfig``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

PERSONAS: tuple[str, ...] = ("endurance_athlete", "casual_exerciser", "irregular_sleeper", "no_workouts")
"""The default cycle of personas: user 1 is the first, user 5 the first again, and so on."""
OPT_IN_PERSONAS: tuple[str, ...] = ("helsinki_night_owl", "sleep_sensitive", "sleep_neutral")
"""Personas only a ``SimulatorConfig.personas`` cycle brings in, so the default data never changes.

``sleep_sensitive`` has a planted sleep -> HRV coupling and ``sleep_neutral`` is its twin without one (the
positive and negative controls of the correlation analytics, docs/methods.md §9.8)."""
FIRST_USER_ID = 10000001


@dataclass
class FaultConfig:
    """Injectable faults, all off by default. JSON field names are the attribute names.

    Request-level faults (errors, slowness, malformed bodies, spurious 429) follow a deterministic sequence
    seeded by (seed, request counter), so a retry of the same request usually succeeds. Record-level faults
    (missing or out-of-range fields) are fixed per record: the same record stays bad while the rate is set.
    """

    server_error_rate: float = 0.0
    server_error_burst: int = 1
    slow_rate: float = 0.0
    slow_seconds: float = 5.0
    malformed_json_rate: float = 0.0
    missing_field_rate: float = 0.0
    out_of_range_rate: float = 0.0
    duplicate_exercises: bool = False
    spurious_429_rate: float = 0.0
    retry_after: bool = True
    short_limit: int | None = None
    short_window_seconds: float = 900.0
    long_limit: int | None = None
    long_window_seconds: float = 86400.0
    planted_values: list[dict[str, Any]] = field(default_factory=list)
    """Values written into chosen records as served (a bad record a test plants on purpose), e.g.
    ``{"user": 1, "stream": "nightly_recharge", "key": "2026-02-27", "field": "heart_rate_avg",
    "value": 130}`` where ``user`` is the Polar user id."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def merged(self, changes: dict[str, Any]) -> FaultConfig:
        """A copy with ``changes`` applied; unknown keys or wrongly typed values raise ``ValueError``."""
        current = self.to_json()
        for key, value in changes.items():
            if key not in current:
                raise ValueError(f"unknown fault field {key!r}")
            current[key] = _coerce_fault_value(key, value)
        return FaultConfig(**current)


_FLOAT_FIELDS = {
    "server_error_rate",
    "slow_rate",
    "slow_seconds",
    "malformed_json_rate",
    "missing_field_rate",
    "out_of_range_rate",
    "spurious_429_rate",
    "short_window_seconds",
    "long_window_seconds",
}
_BOOL_FIELDS = {"duplicate_exercises", "retry_after"}
_OPTIONAL_INT_FIELDS = {"short_limit", "long_limit"}


_PLANT_KEYS = {"user", "stream", "key", "field", "value"}


def _coerce_planted(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("planted_values must be a list of objects")
    for item in value:
        if set(item) != _PLANT_KEYS:
            raise ValueError(f"each planted value has exactly the keys {sorted(_PLANT_KEYS)}")
    return [dict(item) for item in value]


def _coerce_fault_value(key: str, value: Any) -> Any:
    if key == "planted_values":
        return _coerce_planted(value)
    if key in _BOOL_FIELDS:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be a boolean")
        return value
    if key in _OPTIONAL_INT_FIELDS and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number")
    if key in _FLOAT_FIELDS:
        if value < 0:
            raise ValueError(f"{key} must not be negative")
        return float(value)
    if int(value) != value or value < (0 if key in _OPTIONAL_INT_FIELDS else 1):
        raise ValueError(f"{key} must be a positive integer")
    return int(value)


@dataclass
class SimulatorConfig:
    """What to simulate. ``today=None`` follows the real date (and real time of day).

    ``personas`` is the cycle users are assigned from (user ``i`` gets ``personas[i % len(personas)]``);
    the default is the four fixed-offset personas, and naming an opt-in persona (``helsinki_night_owl``,
    whose home zone observes DST) is the only way to get one.
    """

    seed: int = 42
    users: int = 3
    today: dt.date | None = None
    history_days: int = 730
    client_id: str = "sim-client"
    client_secret: str = "sim-secret"
    faults: FaultConfig = field(default_factory=FaultConfig)
    personas: tuple[str, ...] = PERSONAS

    def __post_init__(self) -> None:
        known = (*PERSONAS, *OPT_IN_PERSONAS)
        unknown = [name for name in self.personas if name not in known]
        if not self.personas or unknown:
            raise ValueError(f"personas must name some of {', '.join(known)}; got {list(self.personas)}")
