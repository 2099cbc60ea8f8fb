"""AccessLink v3 sync client: OAuth code exchange, registration, and windowed fetches with few calls.

Each ``fetch_*`` returns a ``FetchResult``: valid records deduplicated by natural key in day order,
rejected records with reasons (never raised, never dropped), the number of HTTP requests it made
(retries included), the server's "today" and how many requested days the source no longer serves.
Records outside the requested range are kept: AccessLink forgets after ~28 days, the warehouse doesn't.

The server's "today" (T) comes from the standard ``Date`` response header of any response and is
kept per client; until it is known the first call of a fetch is a list call, which is always valid.

Request plan per stream (docs/accesslink.md §5):

================  ====================================================================================
sleep, recharge   one 28-day list call covers [T−27, T]; a single in-window day uses one by-date call
                  (404 = no data) instead. Days before T−27 are not requested (the API no longer serves
                  them) and are counted in ``days_outside_window``.
activity          range calls ``?from=&to=`` of ≤ 28 days over [max(first, T−364), min(last, T+1)];
                  when T is not yet known, the plain 28-day list comes first and covers [T−27, T].
exercises         one ``/v3/exercises?samples=true&zones=true`` call (30-day upload window); dedup by id.
continuous HR     range calls ``?from=&to=`` of ≤ 28 days inside [T−27, T+1], newest first.
cardio load       one ``period/days/{n}`` call back to max(first, T−179).

T + 1 counts as inside every window: T is the server's UTC date and a user east of UTC already
lives in the next local day.
================  ====================================================================================

A 365-day fetch of one user ([T−364, T]) therefore costs, without faults: sleep 1 request, nightly
recharge 1, activity 14 (⌈365 / 28⌉, or 1 list + 13 ranges on a fresh client), exercises 1 — 17 in all,
plus 1 for continuous HR and 1 for cardio load. Sleep, recharge and continuous HR report 337 days
outside their window, exercises 335, cardio load 185, activity 0.

Status rules: 401 → ``ReauthorizationRequired``; 403 → ``NotRegistered``; 204, by-date 404 and an
empty list → no data; 400 → ``AccessLinkError`` with the server's message; 429 → wait ``Retry-After``,
else the exhausted window's ``RateLimit-Reset``, else exponential back-off; 5xx, timeouts, connection
errors and malformed JSON → retry with full-jitter exponential back-off up to ``max_retries``, then
``TransientError``. ``RateLimit-*`` headers pace every request (see ``ratelimit``).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx

from polar_pipeline.accesslink.errors import (
    AccessLinkError,
    InvalidGrant,
    NotRegistered,
    PayloadError,
    ReauthorizationRequired,
    TransientError,
)
from polar_pipeline.accesslink.ratelimit import RateLimiter
from polar_pipeline.accesslink.records import (
    CardioLoadDay,
    ContinuousHeartRateDay,
    DailyActivity,
    Exercise,
    NightlyRecharge,
    PolarUser,
    RecordT,
    SleepNight,
    TokenGrant,
)
from polar_pipeline.accesslink.streams import (
    ACTIVITY,
    CARDIO_LOAD,
    CONTINUOUS_HR,
    EXERCISE,
    NIGHTLY_RECHARGE,
    SLEEP,
    RejectedRecord,
    Stream,
    parse_batch,
)

ParsedT = TypeVar("ParsedT")

LIST_WINDOW_DAYS = 28
"""Sleep, recharge, CHR and the plain activity list serve [T−27, T]."""
LOCAL_DAY_AHEAD = 1
"""Days a user's local date may run ahead of the server's UTC date."""
EXERCISE_WINDOW_DAYS = 30
CARDIO_HISTORY_DAYS = 180
"""``/v3/users/cardio-load/period/days/{1..180}`` reaches back 180 days including today."""
ACTIVITY_HISTORY_DAYS = 365
"""Activity ranges may start at most 364 days before today (365 days including today)."""
RANGE_MAX_DAYS = 28
"""Longest ``?from=&to=`` span the API accepts, counted inclusively."""


@dataclass(frozen=True)
class FetchResult(Generic[RecordT]):
    records: list[RecordT]
    rejected: list[RejectedRecord]
    requests: int
    server_today: date | None
    days_outside_window: int


@dataclass(frozen=True)
class RegistrationResult:
    """``user`` is None when the user was already registered (409) or the server sent no body."""

    user: PolarUser | None
    already_registered: bool


@dataclass(frozen=True)
class _Reply:
    status: int
    body: Any
    response: httpx.Response


class _Collector(Generic[RecordT]):
    """Merges the batches of one fetch: first copy of each natural key wins, rejects deduplicated."""

    def __init__(self, stream: Stream[RecordT]) -> None:
        self.stream = stream
        self.records: dict[str, RecordT] = {}
        self.rejected: dict[tuple[str | None, str, str], RejectedRecord] = {}

    def add(self, body: Any) -> None:
        batch = parse_batch(self.stream, body)
        for record in batch.records:
            self.records.setdefault(record.key, record)
        for reject in batch.rejected:
            self.rejected.setdefault((reject.key, reject.payload, reject.reason), reject)

    def result(self, *, requests: int, server_today: date | None, outside: int) -> FetchResult[RecordT]:
        ordered = sorted(self.records.values(), key=lambda record: (record.day, record.key))
        return FetchResult(ordered, list(self.rejected.values()), requests, server_today, outside)


def _days(first: date, last: date) -> int:
    return max(0, (last - first).days + 1)


def _chunks(first: date, last: date, size: int) -> Iterator[tuple[date, date]]:
    """[first, last] as consecutive inclusive ranges of at most ``size`` days, newest first."""
    end = last
    while end >= first:
        start = max(first, end - timedelta(days=size - 1))
        yield start, end
        end = start - timedelta(days=1)


def _check_range(first: date, last: date) -> None:
    if first > last:
        raise ValueError(f"first={first} is after last={last}")


class AccessLinkClient:
    """One ``httpx.Client`` to AccessLink (and the token endpoint); not thread-safe, use one per worker."""

    def __init__(
        self,
        base_url: str,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        timeout: float = 30.0,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rate_limit_margin: int = 1,
        rng: random.Random | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )
        self._token_url = token_url
        self._client_auth = (client_id, client_secret)
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._limiter = RateLimiter(clock, margin=rate_limit_margin)
        self._requests = 0
        self._today: date | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def requests_made(self) -> int:
        """HTTP requests sent by this client so far, retries included."""
        return self._requests

    @property
    def server_today(self) -> date | None:
        """The server's date from the latest ``Date`` header, or None before the first response."""
        return self._today

    # -- auth and registration -------------------------------------------------------------------------

    def exchange_code(self, code: str, redirect_uri: str | None = None) -> TokenGrant:
        """Authorization code → token. ``redirect_uri`` must repeat the one sent to the authorize page."""
        form = {"grant_type": "authorization_code", "code": code}
        if redirect_uri is not None:
            form["redirect_uri"] = redirect_uri
        reply = self._send(
            "POST",
            self._token_url,
            data=form,
            auth=self._client_auth,
            headers={"Accept": "application/json;charset=UTF-8"},
        )
        if reply.status == 200:
            return self._parse_one(TokenGrant.from_json, reply)
        message = _server_message(reply)
        if reply.status == 400 and "invalid_grant" in message:
            raise InvalidGrant(f"token exchange refused: {message}", status_code=400)
        if reply.status == 401:
            raise AccessLinkError(
                f"client credentials rejected by the token endpoint: {message}", status_code=401
            )
        raise AccessLinkError(
            f"token exchange failed with {reply.status}: {message}", status_code=reply.status
        )

    def register_user(self, access_token: str, member_id: str) -> RegistrationResult:
        """``POST /v3/users``; 409 (already registered) is a normal outcome, not an error."""
        reply = self._send("POST", "/v3/users", json={"member-id": member_id}, headers=_bearer(access_token))
        if reply.status == 409:
            return RegistrationResult(user=None, already_registered=True)
        if self._data_body(reply, no_data_statuses=(204,)) is None:
            return RegistrationResult(user=None, already_registered=False)
        return RegistrationResult(user=self._parse_one(PolarUser.from_json, reply), already_registered=False)

    def get_user(self, access_token: str, user_id: int) -> PolarUser | None:
        """``GET /v3/users/{id}``; None when the server answers 204/404 (no such user)."""
        reply = self._send("GET", f"/v3/users/{user_id}", headers=_bearer(access_token))
        if self._data_body(reply, no_data_statuses=(204, 404)) is None:
            return None
        return self._parse_one(PolarUser.from_json, reply)

    def deregister_user(self, access_token: str, user_id: int) -> None:
        """``DELETE /v3/users/{id}``; also revokes the token. A user already gone (404) is fine."""
        reply = self._send("DELETE", f"/v3/users/{user_id}", headers=_bearer(access_token))
        self._data_body(reply, no_data_statuses=(204, 404))

    # -- data streams ----------------------------------------------------------------------------------

    def fetch_sleep(self, access_token: str, first: date, last: date) -> FetchResult[SleepNight]:
        return self._fetch_recent(SLEEP, "/v3/users/sleep", access_token, first, last)

    def fetch_nightly_recharge(
        self, access_token: str, first: date, last: date
    ) -> FetchResult[NightlyRecharge]:
        return self._fetch_recent(NIGHTLY_RECHARGE, "/v3/users/nightly-recharge", access_token, first, last)

    def fetch_activity(
        self, access_token: str, first: date, last: date, *, samples: bool = False
    ) -> FetchResult[DailyActivity]:
        """Daily summaries; ``samples`` adds step, zone and inactivity samples (heavier responses)."""
        _check_range(first, last)
        started = self._requests
        collector = _Collector(ACTIVITY)
        flags = {"steps": "true", "activity_zones": "true", "inactivity_stamps": "true"} if samples else {}
        newest_uncovered = last
        if self._today is None:
            collector.add(self._get("/v3/users/activities", access_token, params=flags))
            if self._today is not None:  # the plain list covered [T−27, T]
                newest_uncovered = min(last, self._today - timedelta(days=LIST_WINDOW_DAYS))
        oldest, newest = _in_window(first, last, self._today, ACTIVITY_HISTORY_DAYS)
        for start, end in _chunks(oldest, min(newest, newest_uncovered), RANGE_MAX_DAYS):
            params = {"from": start.isoformat(), "to": end.isoformat(), **flags}
            collector.add(self._get("/v3/users/activities", access_token, params=params))
        return self._result(collector, started, first, last, ACTIVITY_HISTORY_DAYS)

    def fetch_exercises(
        self,
        access_token: str,
        first: date,
        last: date,
        *,
        samples: bool = True,
        zones: bool = True,
        route: bool = False,
    ) -> FetchResult[Exercise]:
        """One list call: ``/v3/exercises`` serves what was uploaded in the last 30 days, in full.

        The window is by upload time, so ``days_outside_window`` counts start days, an approximation.
        """
        _check_range(first, last)
        started = self._requests
        collector = _Collector(EXERCISE)
        params = {"samples": _flag(samples), "zones": _flag(zones), "route": _flag(route)}
        collector.add(self._get("/v3/exercises", access_token, params=params))
        return self._result(collector, started, first, last, EXERCISE_WINDOW_DAYS)

    def fetch_continuous_hr(
        self, access_token: str, first: date, last: date
    ) -> FetchResult[ContinuousHeartRateDay]:
        """Range calls of ≤ 28 days inside the 28-day window, newest first (the first teaches today)."""
        _check_range(first, last)
        started = self._requests
        collector = _Collector(CONTINUOUS_HR)
        newest = last
        while True:
            oldest, newest = _in_window(first, newest, self._today, LIST_WINDOW_DAYS)
            oldest = max(oldest, newest - timedelta(days=RANGE_MAX_DAYS - 1))
            if oldest > newest:
                break
            params = {"from": oldest.isoformat(), "to": newest.isoformat()}
            collector.add(self._get("/v3/users/continuous-heart-rate", access_token, params=params))
            newest = oldest - timedelta(days=1)
        return self._result(collector, started, first, last, LIST_WINDOW_DAYS)

    def fetch_cardio_load(self, access_token: str, first: date, last: date) -> FetchResult[CardioLoadDay]:
        """One ``period/days/{n}`` call reaching back to ``first`` (at most 180 days: the API's history).

        The API answers one item per day, ``LOAD_STATUS_NOT_AVAILABLE`` days included.
        """
        _check_range(first, last)
        started = self._requests
        collector = _Collector(CARDIO_LOAD)
        oldest, newest = _in_window(first, last, self._today, CARDIO_HISTORY_DAYS)
        if self._today is None or oldest <= newest:
            days = CARDIO_HISTORY_DAYS if self._today is None else (self._today - oldest).days + 1
            path = f"/v3/users/cardio-load/period/days/{max(1, min(days, CARDIO_HISTORY_DAYS))}"
            collector.add(self._get(path, access_token))
        return self._result(collector, started, first, last, CARDIO_HISTORY_DAYS)

    def _fetch_recent(
        self, stream: Stream[RecordT], path: str, access_token: str, first: date, last: date
    ) -> FetchResult[RecordT]:
        """Sleep and recharge: one 28-day list call, or one by-date call when a single day is wanted."""
        _check_range(first, last)
        started = self._requests
        collector = _Collector(stream)
        if self._today is None:
            collector.add(self._get(path, access_token))
        else:
            oldest, newest = _in_window(first, last, self._today, LIST_WINDOW_DAYS)
            wanted = _days(oldest, newest)
            if wanted == 1:
                collector.add(self._get(f"{path}/{oldest.isoformat()}", access_token, by_date=True))
            elif wanted > 1:
                collector.add(self._get(path, access_token))
        return self._result(collector, started, first, last, LIST_WINDOW_DAYS)

    def _result(
        self, collector: _Collector[RecordT], started: int, first: date, last: date, window_days: int
    ) -> FetchResult[RecordT]:
        oldest, newest = _in_window(first, last, self._today, window_days)
        return collector.result(
            requests=self._requests - started,
            server_today=self._today,
            outside=_days(first, last) - _days(oldest, newest),
        )

    # -- HTTP ------------------------------------------------------------------------------------------

    def _get(
        self, path: str, access_token: str, *, params: Mapping[str, str] | None = None, by_date: bool = False
    ) -> Any:
        """A data GET; returns the JSON body, or None for "no data" (204, or 404 on by-date paths)."""
        reply = self._send("GET", path, params=params, headers=_bearer(access_token))
        return self._data_body(reply, no_data_statuses=(204, 404) if by_date else (204,))

    def _data_body(self, reply: _Reply, *, no_data_statuses: tuple[int, ...]) -> Any:
        if reply.status in no_data_statuses:
            return None
        if 200 <= reply.status < 300:
            return reply.body
        message = _server_message(reply)
        if reply.status == 401:
            raise ReauthorizationRequired(
                f"access token rejected (401): the user must re-authorize: {message}", status_code=401
            )
        if reply.status == 403:
            raise NotRegistered(f"user not registered or consent missing (403): {message}", status_code=403)
        raise AccessLinkError(
            f"{reply.response.request.method} {reply.response.request.url.path} failed with "
            f"{reply.status}: {message}",
            status_code=reply.status,
        )

    @staticmethod
    def _parse_one(parse: Callable[[object], ParsedT], reply: _Reply) -> ParsedT:
        try:
            return parse(reply.body)
        except PayloadError as error:
            raise AccessLinkError(
                f"unexpected response body: {error.reason}", status_code=reply.status
            ) from None

    def _send(self, method: str, url: str, **request: Any) -> _Reply:
        """Send with pacing and retries; returns any non-retryable answer with its parsed body."""
        attempt = 0
        while True:
            pause = self._limiter.delay()
            if pause > 0:
                self._sleep(pause)
            self._limiter.record_request()
            self._requests += 1
            try:
                response = self._http.request(method, url, **request)
            except httpx.RequestError as error:
                failure = f"{type(error).__name__}: {error}"
                wait = self._backoff(attempt)
            else:
                self._observe(response)
                failure, wait, reply = self._classify(response, attempt)
                if reply is not None:
                    return reply
            if attempt >= self._max_retries:
                raise TransientError(
                    f"{method} {_path_of(url)}: {failure}; gave up after {attempt + 1} attempts"
                )
            self._sleep(wait)
            attempt += 1

    def _classify(self, response: httpx.Response, attempt: int) -> tuple[str, float, _Reply | None]:
        """(failure, wait, None) for a retryable answer, else ("", 0, reply)."""
        status = response.status_code
        if status == 429:
            retry_after = _retry_after_seconds(response)
            if retry_after is None:
                retry_after = self._limiter.exhausted_reset()
            return (
                "429 Too Many Requests",
                retry_after if retry_after is not None else self._backoff(attempt),
                None,
            )
        if status >= 500:
            return f"{status} server error", self._backoff(attempt), None
        body: Any = None
        if response.content.strip():
            try:
                body = response.json()
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                if 200 <= status < 300:
                    return f"malformed JSON body ({error})", self._backoff(attempt), None
                body = response.text  # error bodies are undocumented; keep the text for the message
        return "", 0.0, _Reply(status, body, response)

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base·2^attempt)], so retrying clients spread out."""
        return self._rng.uniform(0.0, min(self._backoff_max, self._backoff_base * 2**attempt))

    def _observe(self, response: httpx.Response) -> None:
        self._limiter.observe(response.headers)
        today = _date_header(response)
        if today is not None:
            self._today = today


def _bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _in_window(first: date, last: date, today: date | None, window_days: int) -> tuple[date, date]:
    """[first, last] clipped to the source window [T − window_days + 1, T + 1] (empty when first > last).

    The upper bound is T + 1 because T is the server's UTC date, and a user east of UTC already lives
    in the next local day. Without a known T nothing is clipped.
    """
    if today is None:
        return first, last
    return max(first, today - timedelta(days=window_days - 1)), min(
        last, today + timedelta(days=LOCAL_DAY_AHEAD)
    )


def _path_of(url: str) -> str:
    return httpx.URL(url).path


def _date_header(response: httpx.Response) -> date | None:
    """UTC date of the ``Date`` header. Should a server or proxy prepend its own ``Date`` to the
    application's (the simulator's, rendered from its simulated clock), the last one is the application's."""
    for value in reversed(response.headers.get_list("date")):
        try:
            return parsedate_to_datetime(value).astimezone(UTC).date()
        except (TypeError, ValueError, IndexError):
            continue
    return None


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date relative to the ``Date`` header)."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(raw)
        sent = parsedate_to_datetime(response.headers.get_list("date")[-1])
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, (when - sent).total_seconds())


def _server_message(reply: _Reply) -> str:
    """The server's own words: ``message`` / ``error_description`` / ``error`` of a JSON body, or the text."""
    body = reply.body
    if isinstance(body, dict):
        parts = [str(body[key]) for key in ("error", "error_description", "message") if body.get(key)]
        if parts:
            return ": ".join(parts)
    if body is None:
        return reply.response.reason_phrase or str(reply.status)
    return body if isinstance(body, str) else json.dumps(body)
