"""The per-day data streams: sleep, Nightly Recharge, activities, continuous heart rate and cardio load.

Windows (docs/accesslink.md §5.1), with "today" = the simulated clock's UTC date and "now" its instant:

* sleep / Nightly Recharge / continuous HR: dates ``today-27 … today(+1)``; a night appears 90 min after it
  ended (``sleep_end_time``); by-date requests outside that window answer 404 like "no data".
* activities: list = ``today-27 … today``; a range needs ``from``, ``to - from <= 28`` days and ``from``
  at most 365 days old; by date at most 365 days old (else 400), 204 without data. The current local day
  is partial (steps and calories so far).
* cardio load: list = last 28 days; by date up to 180 days back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from polar_pipeline.simulator.asgi import Request, Response, empty_response, json_response
from polar_pipeline.simulator.payloads import (
    local_now_epoch,
    render_activity,
    render_cardio_load,
    render_continuous_hr,
    render_recharge,
    render_sleep,
    render_sleep_available,
)
from polar_pipeline.simulator.physiology import DayState, UserModel
from polar_pipeline.simulator.routes.common import Endpoint, auth_then, data_account, day_range, parse_day
from polar_pipeline.simulator.state import SimulatorState

LIST_WINDOW_DAYS = 28
SYNC_DELAY = dt.timedelta(minutes=90)
ACTIVITY_MAX_AGE_DAYS = 365
ACTIVITY_MAX_SPAN_DAYS = 28
CARDIO_MAX_AGE_DAYS = 180


class DailyRoutes:
    def __init__(self, sim: SimulatorState) -> None:
        self.sim = sim

    def endpoints(self) -> list[Endpoint]:
        """Literal paths before their ``{date}`` siblings: the first matching route wins."""
        return [
            Endpoint("GET", "/v3/users/sleep", self.sleep_list),
            Endpoint("GET", "/v3/users/sleep/available", self.sleep_available),
            Endpoint("GET", "/v3/users/sleep/{date}", self.sleep_by_date),
            Endpoint("GET", "/v3/users/nightly-recharge", self.recharge_list),
            Endpoint("GET", "/v3/users/nightly-recharge/{date}", self.recharge_by_date),
            Endpoint("GET", "/v3/users/activities", self.activities),
            Endpoint("GET", "/v3/users/activities/", self.activities),
            Endpoint("GET", "/v3/users/activities/{date}", self.activity_by_date),
            Endpoint("GET", "/v3/users/continuous-heart-rate", self.chr_range),
            Endpoint("GET", "/v3/users/continuous-heart-rate/{date}", self.chr_by_date),
            Endpoint("GET", "/v3/users/cardio-load", self.cardio_list),
            Endpoint("GET", "/v3/users/cardio-load/", self.cardio_list),
            Endpoint("GET", "/v3/users/cardio-load/date", self.cardio_range),
            Endpoint("GET", "/v3/users/cardio-load/period/days/{count}", self.cardio_period_days),
            Endpoint("GET", "/v3/users/cardio-load/period/months/{count}", self.cardio_period_months),
            Endpoint("GET", "/v3/users/cardio-load/{date}", self.cardio_by_date),
        ]

    # -------------------------------------------------------------------------------------- sleep & recharge

    def _night(self, model: UserModel, day: dt.date, need_recharge: bool) -> DayState | None:
        """The night ending on ``day`` if it is inside the 28-day window and already synced."""
        clock = self.sim.clock
        today = clock.today()
        if day < today - dt.timedelta(days=LIST_WINDOW_DAYS - 1) or day > today + dt.timedelta(days=1):
            return None
        state = model.day(day)
        if state is None or not state.worn or (need_recharge and not state.has_recharge):
            return None
        if state.sleep_end_utc + SYNC_DELAY > clock.now():
            return None
        return state

    def _window_nights(self, model: UserModel, need_recharge: bool) -> list[DayState]:
        today = self.sim.clock.today()
        days = day_range(today - dt.timedelta(days=LIST_WINDOW_DAYS - 1), today + dt.timedelta(days=1))
        return [state for day in days if (state := self._night(model, day, need_recharge)) is not None]

    def _sleep_payload(self, model: UserModel, state: DayState) -> dict[str, Any]:
        return self.sim.faults.corrupt(
            model.x_user_id, "sleep", state.date.isoformat(), render_sleep(model, state)
        )

    def _recharge_payload(self, model: UserModel, state: DayState) -> dict[str, Any]:
        record = render_recharge(model, state)
        return self.sim.faults.corrupt(model.x_user_id, "nightly_recharge", state.date.isoformat(), record)

    def _night_list(
        self,
        request: Request,
        key: str,
        render: Callable[[UserModel, DayState], dict[str, Any]],
        recharge: bool,
    ) -> Response:
        """The window's nights (with Nightly Recharge only, when ``recharge``), rendered under ``key``."""
        account = data_account(self.sim, request)
        if isinstance(account, Response):
            return account
        nights = self._window_nights(account.model, need_recharge=recharge)
        return json_response(200, {key: [render(account.model, night) for night in nights]})

    def sleep_list(self, request: Request, params: dict[str, str]) -> Response:
        return self._night_list(request, "nights", self._sleep_payload, recharge=False)

    def sleep_available(self, request: Request, params: dict[str, str]) -> Response:
        return self._night_list(request, "available", lambda _, night: render_sleep_available(night), False)

    def _night_by_date(
        self,
        request: Request,
        params: dict[str, str],
        render: Callable[[UserModel, DayState], dict[str, Any]],
        recharge: bool,
    ) -> Response:
        account = data_account(self.sim, request)
        if isinstance(account, Response):
            return account
        day = parse_day(params["date"])
        if day is None:
            return self.sim.error(400, "BAD_REQUEST", "invalid date")
        state = self._night(account.model, day, need_recharge=recharge)
        if state is None:
            return self.sim.error(404, "NOT_FOUND", "no data for this date")
        return json_response(200, render(account.model, state))

    def sleep_by_date(self, request: Request, params: dict[str, str]) -> Response:
        return self._night_by_date(request, params, self._sleep_payload, recharge=False)

    def recharge_list(self, request: Request, params: dict[str, str]) -> Response:
        return self._night_list(request, "recharges", self._recharge_payload, recharge=True)

    def recharge_by_date(self, request: Request, params: dict[str, str]) -> Response:
        return self._night_by_date(request, params, self._recharge_payload, recharge=True)

    # ------------------------------------------------------------------------------------------ activities

    def _activity_day(self, model: UserModel, day: dt.date) -> DayState | None:
        """A day with activity data: on or after the history start and already begun in local time."""
        clock = self.sim.clock
        if day > clock.today() + dt.timedelta(days=1):
            return None
        state = model.day(day)
        if state is None or local_now_epoch(state, clock.now()) <= 0:
            return None
        return state

    def _activity_payload(self, request: Request, model: UserModel, state: DayState) -> dict[str, Any]:
        record = render_activity(
            model,
            state,
            self.sim.clock.now(),
            steps=request.query_flag("steps"),
            activity_zones=request.query_flag("activity_zones"),
            inactivity_stamps=request.query_flag("inactivity_stamps"),
        )
        return self.sim.faults.corrupt(model.x_user_id, "activity", state.date.isoformat(), record)

    def activities(self, request: Request, params: dict[str, str]) -> Response:
        account = data_account(self.sim, request)
        if isinstance(account, Response):
            return account
        today = self.sim.clock.today()
        first_text, last_text = request.query_value("from"), request.query_value("to")
        first: dt.date | None = today - dt.timedelta(days=LIST_WINDOW_DAYS - 1)
        last: dt.date | None = today
        if first_text is not None or last_text is not None:
            first = parse_day(first_text)
            last = parse_day(last_text) if last_text is not None else today
            if first is None or last is None or first > last:
                return self.sim.error(400, "BAD_REQUEST", "invalid from/to")
            if (last - first).days > ACTIVITY_MAX_SPAN_DAYS:
                return self.sim.error(400, "BAD_REQUEST", "range longer than 28 days")
            if (today - first).days > ACTIVITY_MAX_AGE_DAYS:
                return self.sim.error(400, "BAD_REQUEST", "from is more than 365 days ago")
        assert first is not None and last is not None
        items = []
        for day in day_range(first, last):
            state = self._activity_day(account.model, day)
            if state is not None:
                items.append(self._activity_payload(request, account.model, state))
        return json_response(200, items)

    def activity_by_date(self, request: Request, params: dict[str, str]) -> Response:
        account = data_account(self.sim, request)
        if isinstance(account, Response):
            return account
        day = parse_day(params["date"])
        if day is None or (self.sim.clock.today() - day).days > ACTIVITY_MAX_AGE_DAYS:
            return self.sim.error(400, "BAD_REQUEST", "invalid date or more than 365 days ago")
        state = self._activity_day(account.model, day)
        if state is None:
            return empty_response(204)
        return json_response(200, self._activity_payload(request, account.model, state))

    # ------------------------------------------------------------------------------------------ continuous HR

    def _chr_day(self, model: UserModel, day: dt.date) -> DayState | None:
        today = self.sim.clock.today()
        if day < today - dt.timedelta(days=LIST_WINDOW_DAYS - 1):
            return None
        return self._activity_day(model, day)

    def chr_by_date(self, request: Request, params: dict[str, str]) -> Response:
        account = data_account(self.sim, request)
        if isinstance(account, Response):
            return account
        day = parse_day(params["date"])
        if day is None:
            return self.sim.error(400, "BAD_REQUEST", "invalid date")
        state = self._chr_day(account.model, day)
        if state is None:
            return self.sim.error(404, "NOT_FOUND", "no data for this date")
        return json_response(200, render_continuous_hr(account.model, state, self.sim.clock.now()))

    def chr_range(self, request: Request, params: dict[str, str]) -> Response:
        account = data_account(self.sim, request)
        if isinstance(account, Response):
            return account
        first, last = parse_day(request.query_value("from")), parse_day(request.query_value("to"))
        if first is None or last is None or first > last or (last - first).days > ACTIVITY_MAX_SPAN_DAYS:
            return self.sim.error(400, "BAD_REQUEST", "from and to are required, at most 28 days apart")
        days = []
        for day in day_range(first, last):
            state = self._chr_day(account.model, day)
            if state is not None:
                days.append(render_continuous_hr(account.model, state, self.sim.clock.now()))
        return json_response(200, {"heart_rates": days})

    # ------------------------------------------------------------------------------------------ cardio load

    def _cardio_days(self, request: Request, first: dt.date, last: dt.date) -> Response:
        account = data_account(self.sim, request)
        if isinstance(account, Response):
            return account
        oldest = self.sim.clock.today() - dt.timedelta(days=CARDIO_MAX_AGE_DAYS)
        items = [render_cardio_load(account.model, day) for day in day_range(max(first, oldest), last)]
        return json_response(200, items)

    def cardio_list(self, request: Request, params: dict[str, str]) -> Response:
        today = self.sim.clock.today()
        return self._cardio_days(request, today - dt.timedelta(days=LIST_WINDOW_DAYS - 1), today)

    def cardio_by_date(self, request: Request, params: dict[str, str]) -> Response:
        day = parse_day(params["date"])
        if day is None:
            return auth_then(self.sim, request, self.sim.error(400, "BAD_REQUEST", "invalid date"))
        if day > self.sim.clock.today():
            return auth_then(self.sim, request, json_response(200, []))
        return self._cardio_days(request, day, day)

    def cardio_range(self, request: Request, params: dict[str, str]) -> Response:
        first, last = parse_day(request.query_value("from")), parse_day(request.query_value("to"))
        if first is None or last is None or first > last or (last - first).days > CARDIO_MAX_AGE_DAYS:
            return auth_then(self.sim, request, self.sim.error(400, "BAD_REQUEST", "invalid from/to"))
        return self._cardio_days(request, first, min(last, self.sim.clock.today()))

    def cardio_period_days(self, request: Request, params: dict[str, str]) -> Response:
        count = int(params["count"]) if params["count"].isdigit() else 0
        if not 1 <= count <= CARDIO_MAX_AGE_DAYS:
            return auth_then(self.sim, request, self.sim.error(400, "BAD_REQUEST", "days must be 1..180"))
        today = self.sim.clock.today()
        return self._cardio_days(request, today - dt.timedelta(days=count - 1), today)

    def cardio_period_months(self, request: Request, params: dict[str, str]) -> Response:
        count = int(params["count"]) if params["count"].isdigit() else 0
        if not 1 <= count <= 6:
            return auth_then(self.sim, request, self.sim.error(400, "BAD_REQUEST", "months must be 1..6"))
        today = self.sim.clock.today()
        return self._cardio_days(request, today - dt.timedelta(days=30 * count - 1), today)


def routes(sim: SimulatorState) -> list[Endpoint]:
    return DailyRoutes(sim).endpoints()
