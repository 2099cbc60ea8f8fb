"""Fault injection: request faults from a deterministic sequence, record corruptions fixed per record."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from polar_pipeline.simulator.config import FaultConfig
from polar_pipeline.simulator.seeding import derive_seed, rng_for, unit_interval

SERVER_ERROR_STATUSES = (500, 502, 503)

# Which required field a "missing_field" corruption drops, per stream (one is picked per record).
MISSING_FIELDS: dict[str, tuple[str, ...]] = {
    "sleep": ("date", "sleep_start_time"),
    "nightly_recharge": ("date",),
    "activity": ("start_time",),
    "exercise": ("id", "start_time"),
}


@dataclass(frozen=True)
class RequestFaults:
    """What happens to one request; drawn before it is handled."""

    server_error_status: int | None
    slow_seconds: float
    malformed_json: bool
    spurious_429: bool


class FaultInjector:
    """Holds the current ``FaultConfig``, the request counter and the log of corrupted records served."""

    def __init__(self, seed: int, config: FaultConfig) -> None:
        self.seed = seed
        self.config = config
        self._request_counter = 0
        self._burst_remaining = 0
        self._log: dict[tuple[int, str, str, str], dict[str, Any]] = {}

    def next_request(self) -> RequestFaults:
        """Faults of the next API request; every draw is made each time so the sequence stays aligned."""
        self._request_counter += 1
        rng = rng_for(self.seed, "request", self._request_counter)
        config = self.config
        error_draw, slow_draw, malformed_draw, throttle_draw = (
            rng.random(),
            rng.random(),
            rng.random(),
            rng.random(),
        )
        status = rng.choice(SERVER_ERROR_STATUSES)
        server_error: int | None = None
        if self._burst_remaining > 0:
            self._burst_remaining -= 1
            server_error = status
        elif error_draw < config.server_error_rate:
            self._burst_remaining = max(0, config.server_error_burst - 1)
            server_error = status
        return RequestFaults(
            server_error_status=server_error,
            slow_seconds=config.slow_seconds if slow_draw < config.slow_rate else 0.0,
            malformed_json=malformed_draw < config.malformed_json_rate,
            spurious_429=throttle_draw < config.spurious_429_rate,
        )

    def corrupt(self, user: int, stream: str, key: str, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` as served: unchanged, or with a field dropped and/or out of range (then logged)."""
        config = self.config
        planted = [
            plant
            for plant in config.planted_values
            if plant["user"] == user and plant["stream"] == stream and plant["key"] == key
        ]
        if planted:
            record = dict(record)
            for plant in planted:
                record[plant["field"]] = plant["value"]
                self._remember(user, stream, key, "planted", plant["field"])
        missing = config.missing_field_rate > 0 and (
            unit_interval(self.seed, user, stream, key, "missing_field") < config.missing_field_rate
        )
        out_of_range = config.out_of_range_rate > 0 and (
            unit_interval(self.seed, user, stream, key, "out_of_range") < config.out_of_range_rate
        )
        if not (missing or out_of_range):
            return record
        record = dict(record)
        picker = random.Random(derive_seed(self.seed, user, stream, key, "field"))
        if out_of_range:
            field = _make_out_of_range(stream, record, picker)
            self._remember(user, stream, key, "out_of_range", field)
        if missing:
            field = picker.choice(MISSING_FIELDS[stream])
            record.pop(field, None)
            self._remember(user, stream, key, "missing_field", field)
        return record

    def _remember(self, user: int, stream: str, key: str, kind: str, field: str) -> None:
        self._log.setdefault(
            (user, stream, key, kind),
            {"user": user, "stream": stream, "key": key, "kind": kind, "field": field},
        )

    def log(self) -> list[dict[str, Any]]:
        return list(self._log.values())

    def reset_log(self) -> None:
        self._log.clear()


def _make_out_of_range(stream: str, record: dict[str, Any], picker: random.Random) -> str:
    """Write an impossible value into ``record`` and return the field name."""
    if stream == "sleep":
        if picker.random() < 0.5:
            record["sleep_score"] = 250
            return "sleep_score"
        record["sleep_start_time"], record["sleep_end_time"] = (
            record["sleep_end_time"],
            record["sleep_start_time"],
        )
        return "sleep_end_time"
    if stream == "nightly_recharge":
        record["heart_rate_variability_avg"] = -5
        return "heart_rate_variability_avg"
    if stream == "activity":
        record["steps"] = -100
        return "steps"
    record["heart_rate"] = {"average": 400, "maximum": 412}
    return "heart_rate"
