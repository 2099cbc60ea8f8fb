"""The ``/sim/*`` admin API: users and their tokens, the simulated clock, ground truth, faults and stats.

Not part of AccessLink: never rate limited, never subject to faults, not counted in the stats; its handlers
answer errors with plain ``{"error": ...}`` bodies.
"""

from __future__ import annotations

from typing import Any

from polar_pipeline.simulator.asgi import Request, Response, json_response
from polar_pipeline.simulator.physiology import UserModel
from polar_pipeline.simulator.routes.common import Endpoint, parse_day
from polar_pipeline.simulator.state import SimulatorState

GROUND_TRUTH_MAX_DAYS = 4000


class AdminRoutes:
    def __init__(self, sim: SimulatorState) -> None:
        self.sim = sim

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/sim/users", self.users),
            Endpoint("GET", "/sim/clock", self.clock),
            Endpoint("POST", "/sim/clock", self.set_clock),
            Endpoint("GET", "/sim/ground-truth/{user_id}", self.ground_truth),
            Endpoint("GET", "/sim/ground-truth/{user_id}/daily", self.ground_truth_daily),
            Endpoint("GET", "/sim/faults", self.faults),
            Endpoint("POST", "/sim/faults", self.set_faults),
            Endpoint("GET", "/sim/faults/log", self.faults_log),
            Endpoint("GET", "/sim/stats", self.stats),
            Endpoint("POST", "/sim/stats/reset", self.reset_stats),
        ]

    def users(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(
            200,
            [
                {
                    "x_user_id": account.x_user_id,
                    "persona": account.model.persona.name,
                    "access_token": account.token,
                    "registered": account.registered,
                    "revoked": account.revoked,
                    "history_start": self.sim.history_start.isoformat(),
                }
                for account in self.sim.accounts.accounts.values()
            ],
        )

    # ------------------------------------------------------------------------------------------ clock

    def _clock_json(self) -> dict[str, Any]:
        now = self.sim.clock.now()
        return {
            "today": now.date().isoformat(),
            "now": now.isoformat(timespec="seconds"),
            "running": self.sim.clock.running,
        }

    def clock(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(200, self._clock_json())

    def set_clock(self, request: Request, params: dict[str, str]) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        if (
            isinstance(body, dict)
            and isinstance(body.get("today"), str)
            and parse_day(body["today"]) is not None
        ):
            day = parse_day(body["today"])
            assert day is not None
            self.sim.clock.set_today(day)
        elif isinstance(body, dict) and type(body.get("advance_days")) is int:
            self.sim.clock.advance_days(body["advance_days"])
        else:
            return json_response(
                400, {"error": 'body must be {"today": "YYYY-MM-DD"} or {"advance_days": N}'}
            )
        return json_response(200, self._clock_json())

    # ------------------------------------------------------------------------------------------ ground truth

    def _model(self, params: dict[str, str]) -> UserModel | None:
        user_id = params["user_id"]
        account = self.sim.accounts.accounts.get(int(user_id)) if user_id.isdigit() else None
        return account.model if account is not None else None

    def ground_truth(self, request: Request, params: dict[str, str]) -> Response:
        model = self._model(params)
        if model is None:
            return json_response(404, {"error": "unknown user"})
        truth: dict[str, Any] = {
            "x_user_id": model.x_user_id,
            "persona": model.persona.name,
            "history_start": model.history_start.isoformat(),
            "home_offset_minutes": model.profile.home_offset_minutes,
            "hr_max": model.profile.hr_max,
            "events": [event.to_json() for event in model.events],
            "devices": [
                {
                    "device_id": device.device_id,
                    "model": device.model,
                    "from": device.first_day.isoformat(),
                    "to": device.last_day.isoformat() if device.last_day else None,
                }
                for device in model.devices
            ],
        }
        if model.profile.home_zone is not None:  # only a DST persona: fixed-offset truth stays as it was
            truth["home_zone"] = model.profile.home_zone
        return json_response(200, truth)

    def ground_truth_daily(self, request: Request, params: dict[str, str]) -> Response:
        model = self._model(params)
        if model is None:
            return json_response(404, {"error": "unknown user"})
        first_text, last_text = request.query_value("from"), request.query_value("to")
        first = parse_day(first_text) if first_text is not None else model.history_start
        last = parse_day(last_text) if last_text is not None else self.sim.clock.today()
        if first is None or last is None or first > last:
            return json_response(400, {"error": "invalid from/to"})
        first = max(first, model.history_start)
        if (last - first).days > GROUND_TRUTH_MAX_DAYS:
            return json_response(400, {"error": f"at most {GROUND_TRUTH_MAX_DAYS} days per request"})
        return json_response(200, [state.to_ground_truth() for state in model.days(first, last)])

    # ------------------------------------------------------------------------------------------ faults, stats

    def faults(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(200, self.sim.faults.config.to_json())

    def set_faults(self, request: Request, params: dict[str, str]) -> Response:
        injector = self.sim.faults
        try:
            body = request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            injector.config = injector.config.merged(body)
        except ValueError as error:
            return json_response(400, {"error": str(error)})
        return json_response(200, injector.config.to_json())

    def faults_log(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(200, self.sim.faults.log())

    def stats(self, request: Request, params: dict[str, str]) -> Response:
        stats, limiter = self.sim.stats, self.sim.limiter
        return json_response(
            200,
            {
                "requests": stats.served,
                "by_route": dict(sorted(stats.by_route.items())),
                "rate_limited": stats.rate_limited,
                "max_in_short_window": limiter.max_in_short_window,
                "max_in_long_window": limiter.max_in_long_window,
            },
        )

    def reset_stats(self, request: Request, params: dict[str, str]) -> Response:
        """Clears the stats and the fault log and restarts the rate-limit windows."""
        self.sim.stats.reset()
        self.sim.limiter.restart()
        self.sim.faults.reset_log()
        return json_response(200, {"reset": True})


def routes(sim: SimulatorState) -> list[Endpoint]:
    return AdminRoutes(sim).endpoints()
