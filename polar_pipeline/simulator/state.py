"""The simulator's shared in-memory state, handed to every route family.

One object instead of reaching into the app: the route modules read and mutate accounts, the clock, the
fault injector and the request stats through it, and build AccessLink-style error bodies with ``error``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from polar_pipeline.simulator.accounts import AccountStore
from polar_pipeline.simulator.asgi import Response, json_response
from polar_pipeline.simulator.clock import SimClock
from polar_pipeline.simulator.config import SimulatorConfig
from polar_pipeline.simulator.exercises import ExerciseRenderer
from polar_pipeline.simulator.faults import FaultInjector
from polar_pipeline.simulator.personas import persona_for_index
from polar_pipeline.simulator.physiology import UserModel
from polar_pipeline.simulator.ratelimit import RateLimiter
from polar_pipeline.simulator.seeding import hex_token
from polar_pipeline.simulator.timefmt import iso_utc_ms_z


@dataclass
class RequestStats:
    """The counters behind ``GET /sim/stats``; ``POST /sim/stats/reset`` clears them."""

    served: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0

    def count_served(self, route_name: str) -> None:
        self.served += 1
        self.by_route[route_name] += 1

    def reset(self) -> None:
        self.served = 0
        self.by_route.clear()
        self.rate_limited = 0


class SimulatorState:
    """Everything the simulator knows; all of it in memory and deterministic per seed."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.clock = SimClock(config.today)
        self.history_start = self.clock.today() - dt.timedelta(days=config.history_days)
        self.models = [
            UserModel(
                config.seed,
                i,
                self.history_start,
                config.history_days,
                persona=persona_for_index(i, config.personas),
            )
            for i in range(config.users)
        ]
        self.accounts = AccountStore(config.seed, self.models)
        self.faults = FaultInjector(config.seed, config.faults)
        self.limiter = RateLimiter()
        self.exercises = ExerciseRenderer()
        self.stats = RequestStats()
        self._error_counter = 0

    def error(self, status: int, error_type: str, message: str) -> Response:
        """The error body AccessLink documents for webhooks; data endpoints' bodies are undocumented."""
        self._error_counter += 1
        return json_response(
            status,
            {
                "timestamp": iso_utc_ms_z(self.clock.now()),
                "status": status,
                "errorType": error_type,
                "message": message,
                "corrId": hex_token(self.config.seed, "corr", self._error_counter, length=16),
            },
        )


__all__ = ["RequestStats", "SimulatorState"]
