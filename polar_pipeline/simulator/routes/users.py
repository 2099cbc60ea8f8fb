"""User registration: ``POST /v3/users`` and ``GET``/``DELETE /v3/users/{user_id}``.

``/v3/users/{user_id}`` matches any segment, so ``SimulatorApp`` adds these routes after the data routes
under ``/v3/users/``.
"""

from __future__ import annotations

from typing import Any

from polar_pipeline.simulator.accounts import Account
from polar_pipeline.simulator.asgi import Request, Response, empty_response, json_response
from polar_pipeline.simulator.routes.common import Endpoint, bearer_account
from polar_pipeline.simulator.state import SimulatorState
from polar_pipeline.simulator.timefmt import iso_utc_ms_z


def user_object(account: Account) -> dict[str, Any]:
    """The kebab-keyed user object of a registered account."""
    profile = account.model.profile
    assert account.registered_at is not None
    return {
        "polar-user-id": account.x_user_id,
        "member-id": account.member_id,
        "registration-date": iso_utc_ms_z(account.registered_at),
        "first-name": profile.first_name,
        "last-name": profile.last_name,
        "birthdate": profile.birthdate.isoformat(),
        "gender": profile.gender,
        "weight": profile.weight_kg,
        "height": profile.height_cm,
        "extra-info": [],
    }


class UserRoutes:
    def __init__(self, sim: SimulatorState) -> None:
        self.sim = sim

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("POST", "/v3/users", self.register),
            Endpoint("GET", "/v3/users/{user_id}", self.get_user),
            Endpoint("DELETE", "/v3/users/{user_id}", self.delete_user),
        ]

    def register(self, request: Request, params: dict[str, str]) -> Response:
        account = bearer_account(self.sim, request)
        if isinstance(account, Response):
            return account
        try:
            body = request.json()
        except ValueError:
            body = None
        member_id = body.get("member-id") if isinstance(body, dict) else None
        if not isinstance(member_id, str) or not member_id:
            return self.sim.error(400, "BAD_REQUEST", 'body must be {"member-id": "..."}')
        if account.registered or self.sim.accounts.member_id_taken(member_id):
            return self.sim.error(409, "CONFLICT", "user already registered or member-id in use")
        self.sim.accounts.register(account, member_id, self.sim.clock.now())
        return json_response(200, user_object(account))

    def _path_user(self, request: Request, params: dict[str, str]) -> Account | Response:
        """The token's account if the path names it; 403 for another known user, 204 for an unknown one."""
        account = bearer_account(self.sim, request)
        if isinstance(account, Response):
            return account
        user_id = params["user_id"]
        if not user_id.isdigit():
            return self.sim.error(404, "NOT_FOUND", "no such resource")
        if int(user_id) != account.x_user_id:
            if int(user_id) in self.sim.accounts.accounts:
                return self.sim.error(403, "FORBIDDEN", "the token belongs to another user")
            return empty_response(204)
        return account

    def get_user(self, request: Request, params: dict[str, str]) -> Response:
        account = self._path_user(request, params)
        if isinstance(account, Response):
            return account
        if not account.registered:
            return empty_response(204)
        return json_response(200, user_object(account))

    def delete_user(self, request: Request, params: dict[str, str]) -> Response:
        account = self._path_user(request, params)
        if isinstance(account, Response):
            return account
        self.sim.accounts.deregister(account)
        return empty_response(204)


def routes(sim: SimulatorState) -> list[Endpoint]:
    return UserRoutes(sim).endpoints()
