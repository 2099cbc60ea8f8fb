"""The ASGI application: request dispatch, rate limits and request-level fault injection around the route
families in ``simulator/routes/`` (OAuth, users, daily streams, exercises, ``/sim/*`` admin).

Only ``/v3/*`` requests are rate limited and subject to request-level faults; OAuth routes are counted in the
stats but not limited (they are other hosts in production); ``/sim/*`` is neither. Rate-limit windows are
fixed windows of real wall-clock time; ``POST /sim/stats/reset`` clears the stats and the fault log and
restarts those windows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import traceback
from collections.abc import Callable
from email.utils import format_datetime

from polar_pipeline.simulator.accounts import AccountStore
from polar_pipeline.simulator.asgi import (
    Receive,
    Request,
    Response,
    Router,
    Scope,
    Send,
    read_request,
    send_response,
)
from polar_pipeline.simulator.clock import SimClock
from polar_pipeline.simulator.config import SimulatorConfig
from polar_pipeline.simulator.exercises import ExerciseRenderer
from polar_pipeline.simulator.faults import FaultInjector
from polar_pipeline.simulator.physiology import UserModel
from polar_pipeline.simulator.ratelimit import Limits, RateLimiter, RateLimitState
from polar_pipeline.simulator.routes import admin, daily, exercises, oauth, users
from polar_pipeline.simulator.routes.common import Endpoint
from polar_pipeline.simulator.state import SimulatorState

# First match wins: the data routes come before users' ``/v3/users/{user_id}`` catch-all.
ROUTE_FAMILIES: tuple[Callable[[SimulatorState], list[Endpoint]], ...] = (
    oauth.routes,
    daily.routes,
    exercises.routes,
    users.routes,
    admin.routes,
)


class SimulatorApp:
    """Callable as ``async (scope, receive, send)``; all state is in memory and deterministic per seed."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.sim = SimulatorState(config)
        self.router = Router()
        for family_routes in ROUTE_FAMILIES:
            for endpoint in family_routes(self.sim):
                self.router.add(endpoint.method, endpoint.template, endpoint.handler)

    # The shared state's parts, readable as attributes of the app.

    @property
    def clock(self) -> SimClock:
        return self.sim.clock

    @property
    def history_start(self) -> dt.date:
        return self.sim.history_start

    @property
    def models(self) -> list[UserModel]:
        return self.sim.models

    @property
    def accounts(self) -> AccountStore:
        return self.sim.accounts

    @property
    def faults(self) -> FaultInjector:
        return self.sim.faults

    @property
    def limiter(self) -> RateLimiter:
        return self.sim.limiter

    @property
    def exercises(self) -> ExerciseRenderer:
        return self.sim.exercises

    # ------------------------------------------------------------------------------------------ ASGI plumbing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        response = await self.handle(request)
        response.headers.append(("Date", format_datetime(self.sim.clock.now(), usegmt=True)))
        response.headers.extend(self.sim.limiter.state(self._limits()).headers())
        await send_response(send, response)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _limits(self) -> Limits:
        faults = self.sim.faults.config
        registered = self.sim.accounts.registered_count()
        return Limits(
            short_limit=faults.short_limit if faults.short_limit is not None else 500 + 20 * registered,
            short_window_seconds=faults.short_window_seconds,
            long_limit=faults.long_limit if faults.long_limit is not None else 5000 + 100 * registered,
            long_window_seconds=faults.long_window_seconds,
        )

    async def handle(self, request: Request) -> Response:
        """Rate limit, then request faults (429, 5xx counted as ``server_error``, delay), then the route.

        A malformed-JSON fault truncates only successful JSON bodies, so errors stay parseable.
        """
        if request.path.startswith("/sim/"):
            return self._dispatch(request)[0]
        is_api = request.path.startswith("/v3/")
        limits = self._limits()
        faults = self.sim.faults.next_request() if is_api else None
        if faults is not None:
            state = self.sim.limiter.state(limits)
            if state.exceeded or faults.spurious_429:
                return self._too_many_requests(state)
            if faults.server_error_status is not None:
                self._count_served("server_error", limits, is_api)
                return self._server_error(faults.server_error_status)
            if faults.slow_seconds > 0:
                await asyncio.sleep(faults.slow_seconds)
        response, route_name = self._dispatch(request)
        self._count_served(route_name, limits, is_api)
        if faults is not None and faults.malformed_json and response.status == 200 and response.is_json:
            response.body = response.body[: max(1, len(response.body) // 2)]
        return response

    def _dispatch(self, request: Request) -> tuple[Response, str]:
        match = self.router.match(request.method, request.path)
        if match is None:
            return self.sim.error(404, "NOT_FOUND", "no such resource"), "unmatched"
        if isinstance(match, str):
            return self.sim.error(405, "METHOD_NOT_ALLOWED", "method not allowed"), "unmatched"
        route, params = match
        try:
            return route.handler(request, params), route.name
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return self.sim.error(500, "INTERNAL_SERVER_ERROR", "simulator bug"), route.name

    def _count_served(self, route_name: str, limits: Limits, is_api: bool) -> None:
        self.sim.stats.count_served(route_name)
        if is_api:
            self.sim.limiter.count_served(limits)

    def _too_many_requests(self, state: RateLimitState) -> Response:
        self.sim.stats.rate_limited += 1
        response = self.sim.error(429, "TOO_MANY_REQUESTS", "rate limit exceeded")
        if self.sim.faults.config.retry_after:
            response.headers.append(("Retry-After", str(max(1, state.retry_after_seconds))))
        return response

    def _server_error(self, status: int) -> Response:
        if status == 500:
            return self.sim.error(500, "INTERNAL_SERVER_ERROR", "simulated server error")
        reason = {502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
        body = f"<html><body><h1>{status} {reason}</h1></body></html>".encode()
        return Response(status, body, "text/html")


def create_app(config: SimulatorConfig | None = None) -> SimulatorApp:
    """The simulator as an ASGI app; start-up only plans events, days are generated lazily and cached."""
    return SimulatorApp(config if config is not None else SimulatorConfig())


__all__ = ["SimulatorApp", "create_app"]
