"""The ASGI application: OAuth, registration, data endpoints with AccessLink's windows and status codes,
rate limits, fault injection and the ``/sim/*`` admin API.

Windows (spec §7), with "today" = the simulated clock's UTC date and "now" its instant:

* sleep / Nightly Recharge / continuous HR: dates ``today-27 … today(+1)``; a night appears 90 min after it
  ended (``sleep_end_time``); by-date requests outside that window answer 404 like "no data".
* activities: list = ``today-27 … today``; a range needs ``from``, ``to - from <= 28`` days and ``from``
  at most 365 days old; by date at most 365 days old (else 400), 204 without data. The current local day
  is partial (steps and calories so far).
* exercises: uploaded in the last 30 days and after the user's registration; by id: any uploaded exercise
  after registration, else 404.
* cardio load: list = last 28 days; by date up to 180 days back.

Only ``/v3/*`` requests are rate limited and subject to request-level faults; OAuth routes are counted in the
stats but not limited (they are other hosts in production); ``/sim/*`` is neither. Rate-limit windows are
fixed windows of real wall-clock time; ``POST /sim/stats/reset`` clears the stats and the fault log and
restarts those windows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import re
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from polar_pipeline.simulator.accounts import (
    DEFAULT_REDIRECT_URI,
    TOKEN_EXPIRES_IN,
    Account,
    AccountStore,
)
from polar_pipeline.simulator.asgi import (
    Receive,
    Request,
    Response,
    Router,
    Scope,
    Send,
    empty_response,
    json_response,
    read_request,
    send_response,
)
from polar_pipeline.simulator.clock import SimClock
from polar_pipeline.simulator.config import SimulatorConfig
from polar_pipeline.simulator.exercises import ExerciseRenderer
from polar_pipeline.simulator.faults import FaultInjector
from polar_pipeline.simulator.payloads import (
    local_now_epoch,
    render_activity,
    render_cardio_load,
    render_continuous_hr,
    render_recharge,
    render_sleep,
    render_sleep_available,
)
from polar_pipeline.simulator.physiology import DayState, Session, UserModel
from polar_pipeline.simulator.ratelimit import Limits, RateLimiter, RateLimitState
from polar_pipeline.simulator.seeding import hex_token
from polar_pipeline.simulator.timefmt import iso_utc_ms_z

LIST_WINDOW_DAYS = 28
SYNC_DELAY = dt.timedelta(minutes=90)
ACTIVITY_MAX_AGE_DAYS = 365
ACTIVITY_MAX_SPAN_DAYS = 28
EXERCISE_WINDOW = dt.timedelta(days=30)
CARDIO_MAX_AGE_DAYS = 180
GROUND_TRUTH_MAX_DAYS = 4000
_DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(text: str | None) -> dt.date | None:
    if text is None or not _DATE_PATTERN.match(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def day_range(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


class SimulatorApp:
    """Callable as ``async (scope, receive, send)``; all state is in memory and deterministic per seed."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.clock = SimClock(config.today)
        self.history_start = self.clock.today() - dt.timedelta(days=config.history_days)
        self.models = [
            UserModel(config.seed, i, self.history_start, config.history_days) for i in range(config.users)
        ]
        self.accounts = AccountStore(config.seed, self.models)
        self.faults = FaultInjector(config.seed, config.faults)
        self.limiter = RateLimiter()
        self.exercises = ExerciseRenderer()
        self._served = 0
        self._by_route: Counter[str] = Counter()
        self._rate_limited = 0
        self._error_counter = 0
        self.router = Router()
        self._add_routes()

    # ------------------------------------------------------------------------------------------ ASGI plumbing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        response = await self.handle(request)
        response.headers.append(("Date", format_datetime(self.clock.now(), usegmt=True)))
        response.headers.extend(self.limiter.state(self._limits()).headers())
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
        faults = self.faults.config
        registered = self.accounts.registered_count()
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
        faults = self.faults.next_request() if is_api else None
        if faults is not None:
            state = self.limiter.state(limits)
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
            return self._error(404, "NOT_FOUND", "no such resource"), "unmatched"
        if isinstance(match, str):
            return self._error(405, "METHOD_NOT_ALLOWED", "method not allowed"), "unmatched"
        route, params = match
        try:
            return route.handler(request, params), route.name
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return self._error(500, "INTERNAL_SERVER_ERROR", "simulator bug"), route.name

    def _count_served(self, route_name: str, limits: Limits, is_api: bool) -> None:
        self._served += 1
        self._by_route[route_name] += 1
        if is_api:
            self.limiter.count_served(limits)

    def _too_many_requests(self, state: RateLimitState) -> Response:
        self._rate_limited += 1
        response = self._error(429, "TOO_MANY_REQUESTS", "rate limit exceeded")
        if self.faults.config.retry_after:
            response.headers.append(("Retry-After", str(max(1, state.retry_after_seconds))))
        return response

    def _server_error(self, status: int) -> Response:
        if status == 500:
            return self._error(500, "INTERNAL_SERVER_ERROR", "simulated server error")
        reason = {502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
        body = f"<html><body><h1>{status} {reason}</h1></body></html>".encode()
        return Response(status, body, "text/html")

    def _error(self, status: int, error_type: str, message: str) -> Response:
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

    # ------------------------------------------------------------------------------------------ routes

    def _add_routes(self) -> None:
        add = self.router.add
        add("GET", "/oauth2/authorization", self._authorize)
        add("POST", "/v2/oauth2/token", self._token)
        add("POST", "/v3/users", self._register)
        add("GET", "/v3/users/sleep", self._sleep_list)
        add("GET", "/v3/users/sleep/available", self._sleep_available)
        add("GET", "/v3/users/sleep/{date}", self._sleep_by_date)
        add("GET", "/v3/users/nightly-recharge", self._recharge_list)
        add("GET", "/v3/users/nightly-recharge/{date}", self._recharge_by_date)
        add("GET", "/v3/users/activities", self._activities)
        add("GET", "/v3/users/activities/", self._activities)
        add("GET", "/v3/users/activities/{date}", self._activity_by_date)
        add("GET", "/v3/users/continuous-heart-rate", self._chr_range)
        add("GET", "/v3/users/continuous-heart-rate/{date}", self._chr_by_date)
        add("GET", "/v3/users/cardio-load", self._cardio_list)
        add("GET", "/v3/users/cardio-load/", self._cardio_list)
        add("GET", "/v3/users/cardio-load/date", self._cardio_range)
        add("GET", "/v3/users/cardio-load/period/days/{count}", self._cardio_period_days)
        add("GET", "/v3/users/cardio-load/period/months/{count}", self._cardio_period_months)
        add("GET", "/v3/users/cardio-load/{date}", self._cardio_by_date)
        add("GET", "/v3/exercises", self._exercise_list)
        add("GET", "/v3/exercises/{exercise_id}", self._exercise_by_id)
        add("GET", "/v3/users/{user_id}", self._get_user)
        add("DELETE", "/v3/users/{user_id}", self._delete_user)
        add("GET", "/sim/users", self._sim_users)
        add("GET", "/sim/clock", self._sim_clock)
        add("POST", "/sim/clock", self._sim_set_clock)
        add("GET", "/sim/ground-truth/{user_id}", self._sim_ground_truth)
        add("GET", "/sim/ground-truth/{user_id}/daily", self._sim_ground_truth_daily)
        add("GET", "/sim/faults", self._sim_faults)
        add("POST", "/sim/faults", self._sim_set_faults)
        add("GET", "/sim/faults/log", self._sim_faults_log)
        add("GET", "/sim/stats", self._sim_stats)
        add("POST", "/sim/stats/reset", self._sim_reset_stats)

    # ------------------------------------------------------------------------------------------ auth helpers

    def _bearer_account(self, request: Request) -> Account | Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        account = self.accounts.by_token(token.strip()) if scheme.lower() == "bearer" else None
        if account is None or account.revoked:
            return self._error(401, "UNAUTHORIZED", "missing, invalid or revoked access token")
        return account

    def _data_account(self, request: Request) -> Account | Response:
        account = self._bearer_account(request)
        if isinstance(account, Account) and not account.registered:
            return self._error(403, "FORBIDDEN", "user not registered or consents missing")
        return account

    # ------------------------------------------------------------------------------------------ OAuth

    def _authorize(self, request: Request, params: dict[str, str]) -> Response:
        if request.query_value("response_type") != "code":
            return json_response(400, {"error": "unsupported_response_type"})
        if request.query_value("client_id") != self.config.client_id:
            return json_response(400, {"error": "invalid_client"})
        redirect_uri = request.query_value("redirect_uri")
        state = request.query_value("state")
        wanted = request.query_value("sim_user")
        if wanted is not None:
            account = self.accounts.accounts.get(int(wanted)) if wanted.isdigit() else None
            if account is None:
                return json_response(
                    400, {"error": "invalid_request", "error_description": "unknown sim_user"}
                )
        else:
            account = self.accounts.next_unauthorized()
        query: dict[str, str] = {}
        if account is None:
            query["error"] = "access_denied"
        else:
            query["code"] = self.accounts.issue_code(account, redirect_uri)
        if state is not None:
            query["state"] = state
        target = redirect_uri or DEFAULT_REDIRECT_URI
        location = f"{target}{'&' if '?' in target else '?'}{urlencode(query)}"
        return Response(302, headers=[("Location", location)])

    def _token(self, request: Request, params: dict[str, str]) -> Response:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            credentials = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            credentials = ""
        if scheme.lower() != "basic" or credentials != f"{self.config.client_id}:{self.config.client_secret}":
            return json_response(401, {"error": "invalid_client"})
        form = request.form()
        if form.get("grant_type") != "authorization_code":
            return json_response(400, {"error": "unsupported_grant_type"})
        code = form.get("code")
        if not code:
            return json_response(400, {"error": "invalid_request"})
        account = self.accounts.redeem_code(code, form.get("redirect_uri"))
        if account is None:
            return json_response(400, {"error": "invalid_grant"})
        return json_response(
            200,
            {
                "access_token": account.token,
                "token_type": "bearer",
                "expires_in": TOKEN_EXPIRES_IN,
                "x_user_id": account.x_user_id,
            },
        )

    # ------------------------------------------------------------------------------------------ users

    def _user_object(self, account: Account) -> dict[str, Any]:
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

    def _register(self, request: Request, params: dict[str, str]) -> Response:
        account = self._bearer_account(request)
        if isinstance(account, Response):
            return account
        try:
            body = request.json()
        except ValueError:
            body = None
        member_id = body.get("member-id") if isinstance(body, dict) else None
        if not isinstance(member_id, str) or not member_id:
            return self._error(400, "BAD_REQUEST", 'body must be {"member-id": "..."}')
        if account.registered or self.accounts.member_id_taken(member_id):
            return self._error(409, "CONFLICT", "user already registered or member-id in use")
        self.accounts.register(account, member_id, self.clock.now())
        return json_response(200, self._user_object(account))

    def _path_user(self, request: Request, params: dict[str, str]) -> Account | Response:
        """The token's account if the path names it; 403 for another known user, 204 for an unknown one."""
        account = self._bearer_account(request)
        if isinstance(account, Response):
            return account
        user_id = params["user_id"]
        if not user_id.isdigit():
            return self._error(404, "NOT_FOUND", "no such resource")
        if int(user_id) != account.x_user_id:
            if int(user_id) in self.accounts.accounts:
                return self._error(403, "FORBIDDEN", "the token belongs to another user")
            return empty_response(204)
        return account

    def _get_user(self, request: Request, params: dict[str, str]) -> Response:
        account = self._path_user(request, params)
        if isinstance(account, Response):
            return account
        if not account.registered:
            return empty_response(204)
        return json_response(200, self._user_object(account))

    def _delete_user(self, request: Request, params: dict[str, str]) -> Response:
        account = self._path_user(request, params)
        if isinstance(account, Response):
            return account
        self.accounts.deregister(account)
        return empty_response(204)

    # -------------------------------------------------------------------------------------- sleep & recharge

    def _night(self, model: UserModel, day: dt.date, need_recharge: bool) -> DayState | None:
        """The night ending on ``day`` if it is inside the 28-day window and already synced."""
        today = self.clock.today()
        if day < today - dt.timedelta(days=LIST_WINDOW_DAYS - 1) or day > today + dt.timedelta(days=1):
            return None
        state = model.day(day)
        if state is None or not state.worn or (need_recharge and not state.has_recharge):
            return None
        if state.sleep_end_utc + SYNC_DELAY > self.clock.now():
            return None
        return state

    def _window_nights(self, model: UserModel, need_recharge: bool) -> list[DayState]:
        today = self.clock.today()
        days = day_range(today - dt.timedelta(days=LIST_WINDOW_DAYS - 1), today + dt.timedelta(days=1))
        return [state for day in days if (state := self._night(model, day, need_recharge)) is not None]

    def _sleep_payload(self, model: UserModel, state: DayState) -> dict[str, Any]:
        return self.faults.corrupt(
            model.x_user_id, "sleep", state.date.isoformat(), render_sleep(model, state)
        )

    def _recharge_payload(self, model: UserModel, state: DayState) -> dict[str, Any]:
        record = render_recharge(model, state)
        return self.faults.corrupt(model.x_user_id, "nightly_recharge", state.date.isoformat(), record)

    def _sleep_list(self, request: Request, params: dict[str, str]) -> Response:
        account = self._data_account(request)
        if isinstance(account, Response):
            return account
        nights = self._window_nights(account.model, need_recharge=False)
        return json_response(200, {"nights": [self._sleep_payload(account.model, s) for s in nights]})

    def _sleep_available(self, request: Request, params: dict[str, str]) -> Response:
        account = self._data_account(request)
        if isinstance(account, Response):
            return account
        nights = self._window_nights(account.model, need_recharge=False)
        return json_response(200, {"available": [render_sleep_available(s) for s in nights]})

    def _by_date(
        self,
        request: Request,
        params: dict[str, str],
        render: Callable[[UserModel, DayState], dict[str, Any]],
        recharge: bool,
    ) -> Response:
        account = self._data_account(request)
        if isinstance(account, Response):
            return account
        day = parse_day(params["date"])
        if day is None:
            return self._error(400, "BAD_REQUEST", "invalid date")
        state = self._night(account.model, day, need_recharge=recharge)
        if state is None:
            return self._error(404, "NOT_FOUND", "no data for this date")
        return json_response(200, render(account.model, state))

    def _sleep_by_date(self, request: Request, params: dict[str, str]) -> Response:
        return self._by_date(request, params, self._sleep_payload, recharge=False)

    def _recharge_list(self, request: Request, params: dict[str, str]) -> Response:
        account = self._data_account(request)
        if isinstance(account, Response):
            return account
        nights = self._window_nights(account.model, need_recharge=True)
        return json_response(200, {"recharges": [self._recharge_payload(account.model, s) for s in nights]})

    def _recharge_by_date(self, request: Request, params: dict[str, str]) -> Response:
        return self._by_date(request, params, self._recharge_payload, recharge=True)

    # ------------------------------------------------------------------------------------------ activities

    def _activity_day(self, model: UserModel, day: dt.date) -> DayState | None:
        """A day with activity data: on or after the history start and already begun in local time."""
        if day > self.clock.today() + dt.timedelta(days=1):
            return None
        state = model.day(day)
        if state is None or local_now_epoch(state, self.clock.now()) <= 0:
            return None
        return state

    def _activity_payload(self, request: Request, model: UserModel, state: DayState) -> dict[str, Any]:
        record = render_activity(
            model,
            state,
            self.clock.now(),
            steps=request.query_flag("steps"),
            activity_zones=request.query_flag("activity_zones"),
            inactivity_stamps=request.query_flag("inactivity_stamps"),
        )
        return self.faults.corrupt(model.x_user_id, "activity", state.date.isoformat(), record)

    def _activities(self, request: Request, params: dict[str, str]) -> Response:
        account = self._data_account(request)
        if isinstance(account, Response):
            return account
        today = self.clock.today()
        first_text, last_text = request.query_value("from"), request.query_value("to")
        first: dt.date | None = today - dt.timedelta(days=LIST_WINDOW_DAYS - 1)
        last: dt.date | None = today
        if first_text is not None or last_text is not None:
            first = parse_day(first_text)
            last = parse_day(last_text) if last_text is not None else today
            if first is None or last is None or first > last:
                return self._error(400, "BAD_REQUEST", "invalid from/to")
            if (last - first).days > ACTIVITY_MAX_SPAN_DAYS:
                return self._error(400, "BAD_REQUEST", "range longer than 28 days")
            if (today - first).days > ACTIVITY_MAX_AGE_DAYS:
                return self._error(400, "BAD_REQUEST", "from is more than 365 days ago")
        assert first is not None and last is not None
        items = []
        for day in day_range(first, last):
            state = self._activity_day(account.model, day)
            if state is not None:
                items.append(self._activity_payload(request, account.model, state))
        return json_response(200, items)

    def _activity_by_date(self, request: Request, params: dict[str, str]) -> Response:
        account = self._data_account(request)
        if isinstance(account, Response):
            return account
        day = parse_day(params["date"])
        if day is None or (self.clock.today() - day).days > ACTIVITY_MAX_AGE_DAYS:
            return self._error(400, "BAD_REQUEST", "invalid date or more than 365 days ago")
        state = self._activity_day(account.model, day)
        if state is None:
            return empty_response(204)
        return json_response(200, self._activity_payload(request, account.model, state))

    # ------------------------------------------------------------------------------------------ continuous HR

    def _chr_day(self, model: UserModel, day: dt.date) -> DayState | None:
        today = self.clock.today()
        if day < today - dt.timedelta(days=LIST_WINDOW_DAYS - 1):
            return None
        return self._activity_day(model, day)

    def _chr_by_date(self, request: Request, params: dict[str, str]) -> Response:
        account = self._data_account(request)
        if isinstance(account, Response):
            return account
        day = parse_day(params["date"])
        if day is None:
            return self._error(400, "BAD_REQUEST", "invalid date")
        state = self._chr_day(account.model, day)
        if state is None:
            return self._error(404, "NOT_FOUND", "no data for this date")
        return json_response(200, render_continuous_hr(account.model, state, self.clock.now()))

    def _chr_range(self, request: Request, params: dict[str, str]) -> Response:
        account = self._data_account(request)
        if isinstance(account, Response):
            return account
        first, last = parse_day(request.query_value("from")), parse_day(request.query_value("to"))
        if first is None or last is None or first > last or (last - first).days > ACTIVITY_MAX_SPAN_DAYS:
            return self._error(400, "BAD_REQUEST", "from and to are required, at most 28 days apart")
        days = []
        for day in day_range(first, last):
            state = self._chr_day(account.model, day)
            if state is not None:
                days.append(render_continuous_hr(account.model, state, self.clock.now()))
        return json_response(200, {"heart_rates": days})

    # ------------------------------------------------------------------------------------------ cardio load

    def _cardio_days(self, request: Request, first: dt.date, last: dt.date) -> Response:
        account = self._data_account(request)
        if isinstance(account, Response):
            return account
        oldest = self.clock.today() - dt.timedelta(days=CARDIO_MAX_AGE_DAYS)
        items = [render_cardio_load(account.model, day) for day in day_range(max(first, oldest), last)]
        return json_response(200, items)

    def _cardio_list(self, request: Request, params: dict[str, str]) -> Response:
        today = self.clock.today()
        return self._cardio_days(request, today - dt.timedelta(days=LIST_WINDOW_DAYS - 1), today)

    def _cardio_by_date(self, request: Request, params: dict[str, str]) -> Response:
        day = parse_day(params["date"])
        if day is None:
            return self._auth_then(request, self._error(400, "BAD_REQUEST", "invalid date"))
        if day > self.clock.today():
            return self._auth_then(request, json_response(200, []))
        return self._cardio_days(request, day, day)

    def _cardio_range(self, request: Request, params: dict[str, str]) -> Response:
        first, last = parse_day(request.query_value("from")), parse_day(request.query_value("to"))
        if first is None or last is None or first > last or (last - first).days > CARDIO_MAX_AGE_DAYS:
            return self._auth_then(request, self._error(400, "BAD_REQUEST", "invalid from/to"))
        return self._cardio_days(request, first, min(last, self.clock.today()))

    def _cardio_period_days(self, request: Request, params: dict[str, str]) -> Response:
        count = int(params["count"]) if params["count"].isdigit() else 0
        if not 1 <= count <= CARDIO_MAX_AGE_DAYS:
            return self._auth_then(request, self._error(400, "BAD_REQUEST", "days must be 1..180"))
        today = self.clock.today()
        return self._cardio_days(request, today - dt.timedelta(days=count - 1), today)

    def _cardio_period_months(self, request: Request, params: dict[str, str]) -> Response:
        count = int(params["count"]) if params["count"].isdigit() else 0
        if not 1 <= count <= 6:
            return self._auth_then(request, self._error(400, "BAD_REQUEST", "months must be 1..6"))
        today = self.clock.today()
        return self._cardio_days(request, today - dt.timedelta(days=30 * count - 1), today)

    def _auth_then(self, request: Request, response: Response) -> Response:
        """Authentication and registration errors take precedence over parameter errors."""
        account = self._data_account(request)
        return account if isinstance(account, Response) else response

    # ------------------------------------------------------------------------------------------ exercises

    def _exercise_visible(self, account: Account, session: Session) -> bool:
        now = self.clock.now()
        registered_at = account.registered_at
        return registered_at is not None and registered_at <= session.upload_utc <= now

    def _exercise_list(self, request: Request, params: dict[str, str]) -> Response:
        account = self._data_account(request)
        if isinstance(account, Response):
            return account
        now = self.clock.now()
        model = account.model
        sessions = [
            session
            for state in model.days(now.date() - dt.timedelta(days=32), now.date() + dt.timedelta(days=1))
            for session in state.sessions
            if self._exercise_visible(account, session) and session.upload_utc > now - EXERCISE_WINDOW
        ]
        sessions.sort(key=lambda session: (session.upload_utc, session.exercise_id))
        items = [self._exercise_payload(request, model, session) for session in sessions]
        if self.faults.config.duplicate_exercises:
            items.extend(items[::3])
        return json_response(200, items)

    def _exercise_by_id(self, request: Request, params: dict[str, str]) -> Response:
        account = self._data_account(request)
        if isinstance(account, Response):
            return account
        found = account.model.find_exercise(params["exercise_id"], self.clock.today() + dt.timedelta(days=1))
        if found is None or not self._exercise_visible(account, found[1]):
            return self._error(404, "NOT_FOUND", "no such exercise")
        return json_response(200, self._exercise_payload(request, account.model, found[1]))

    def _exercise_payload(self, request: Request, model: UserModel, session: Session) -> dict[str, Any]:
        record = self.exercises.render(
            model,
            session,
            samples=request.query_flag("samples"),
            zones=request.query_flag("zones"),
            route=request.query_flag("route"),
        )
        return self.faults.corrupt(model.x_user_id, "exercise", session.exercise_id, record)

    # ------------------------------------------------------------------------------------------ admin

    def _sim_users(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(
            200,
            [
                {
                    "x_user_id": account.x_user_id,
                    "persona": account.model.persona.name,
                    "access_token": account.token,
                    "registered": account.registered,
                    "revoked": account.revoked,
                    "history_start": self.history_start.isoformat(),
                }
                for account in self.accounts.accounts.values()
            ],
        )

    def _clock_json(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "today": now.date().isoformat(),
            "now": now.isoformat(timespec="seconds"),
            "running": self.clock.running,
        }

    def _sim_clock(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(200, self._clock_json())

    def _sim_set_clock(self, request: Request, params: dict[str, str]) -> Response:
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
            self.clock.set_today(day)
        elif isinstance(body, dict) and type(body.get("advance_days")) is int:
            self.clock.advance_days(body["advance_days"])
        else:
            return json_response(
                400, {"error": 'body must be {"today": "YYYY-MM-DD"} or {"advance_days": N}'}
            )
        return json_response(200, self._clock_json())

    def _sim_model(self, params: dict[str, str]) -> UserModel | None:
        user_id = params["user_id"]
        account = self.accounts.accounts.get(int(user_id)) if user_id.isdigit() else None
        return account.model if account is not None else None

    def _sim_ground_truth(self, request: Request, params: dict[str, str]) -> Response:
        model = self._sim_model(params)
        if model is None:
            return json_response(404, {"error": "unknown user"})
        return json_response(
            200,
            {
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
            },
        )

    def _sim_ground_truth_daily(self, request: Request, params: dict[str, str]) -> Response:
        model = self._sim_model(params)
        if model is None:
            return json_response(404, {"error": "unknown user"})
        first_text, last_text = request.query_value("from"), request.query_value("to")
        first = parse_day(first_text) if first_text is not None else model.history_start
        last = parse_day(last_text) if last_text is not None else self.clock.today()
        if first is None or last is None or first > last:
            return json_response(400, {"error": "invalid from/to"})
        first = max(first, model.history_start)
        if (last - first).days > GROUND_TRUTH_MAX_DAYS:
            return json_response(400, {"error": f"at most {GROUND_TRUTH_MAX_DAYS} days per request"})
        return json_response(200, [state.to_ground_truth() for state in model.days(first, last)])

    def _sim_faults(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(200, self.faults.config.to_json())

    def _sim_set_faults(self, request: Request, params: dict[str, str]) -> Response:
        try:
            body = request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            self.faults.config = self.faults.config.merged(body)
        except ValueError as error:
            return json_response(400, {"error": str(error)})
        return json_response(200, self.faults.config.to_json())

    def _sim_faults_log(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(200, self.faults.log())

    def _sim_stats(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(
            200,
            {
                "requests": self._served,
                "by_route": dict(sorted(self._by_route.items())),
                "rate_limited": self._rate_limited,
                "max_in_short_window": self.limiter.max_in_short_window,
                "max_in_long_window": self.limiter.max_in_long_window,
            },
        )

    def _sim_reset_stats(self, request: Request, params: dict[str, str]) -> Response:
        self._served = 0
        self._by_route.clear()
        self._rate_limited = 0
        self.limiter.restart()
        self.faults.reset_log()
        return json_response(200, {"reset": True})


def create_app(config: SimulatorConfig | None = None) -> SimulatorApp:
    """The simulator as an ASGI app; start-up only plans events, days are generated lazily and cached."""
    return SimulatorApp(config if config is not None else SimulatorConfig())


__all__ = ["SimulatorApp", "create_app"]
