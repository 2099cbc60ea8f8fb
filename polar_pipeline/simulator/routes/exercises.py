"""Exercises: ``GET /v3/exercises`` and ``GET /v3/exercises/{exercise_id}``.

Window (docs/accesslink.md §5.1): the list holds exercises uploaded in the last 30 days and after the
user's registration; by id: any uploaded exercise after registration, else 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from polar_pipeline.simulator.accounts import Account
from polar_pipeline.simulator.asgi import Request, Response, json_response
from polar_pipeline.simulator.physiology import Session, UserModel
from polar_pipeline.simulator.routes.common import Endpoint, data_account
from polar_pipeline.simulator.state import SimulatorState

EXERCISE_WINDOW = dt.timedelta(days=30)


class ExerciseRoutes:
    def __init__(self, sim: SimulatorState) -> None:
        self.sim = sim

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/v3/exercises", self.exercise_list),
            Endpoint("GET", "/v3/exercises/{exercise_id}", self.exercise_by_id),
        ]

    def _visible(self, account: Account, session: Session) -> bool:
        now = self.sim.clock.now()
        registered_at = account.registered_at
        return registered_at is not None and registered_at <= session.upload_utc <= now

    def exercise_list(self, request: Request, params: dict[str, str]) -> Response:
        account = data_account(self.sim, request)
        if isinstance(account, Response):
            return account
        now = self.sim.clock.now()
        model = account.model
        sessions = [
            session
            for state in model.days(now.date() - dt.timedelta(days=32), now.date() + dt.timedelta(days=1))
            for session in state.sessions
            if self._visible(account, session) and session.upload_utc > now - EXERCISE_WINDOW
        ]
        sessions.sort(key=lambda session: (session.upload_utc, session.exercise_id))
        items = [self._payload(request, model, session) for session in sessions]
        if self.sim.faults.config.duplicate_exercises:
            items.extend(items[::3])
        return json_response(200, items)

    def exercise_by_id(self, request: Request, params: dict[str, str]) -> Response:
        account = data_account(self.sim, request)
        if isinstance(account, Response):
            return account
        found = account.model.find_exercise(
            params["exercise_id"], self.sim.clock.today() + dt.timedelta(days=1)
        )
        if found is None or not self._visible(account, found[1]):
            return self.sim.error(404, "NOT_FOUND", "no such exercise")
        return json_response(200, self._payload(request, account.model, found[1]))

    def _payload(self, request: Request, model: UserModel, session: Session) -> dict[str, Any]:
        record = self.sim.exercises.render(
            model,
            session,
            samples=request.query_flag("samples"),
            zones=request.query_flag("zones"),
            route=request.query_flag("route"),
        )
        return self.sim.faults.corrupt(model.x_user_id, "exercise", session.exercise_id, record)


def routes(sim: SimulatorState) -> list[Endpoint]:
    return ExerciseRoutes(sim).endpoints()
