"""Client unit tests against an in-process fake AccessLink (``httpx.MockTransport``), with a fake clock."""

from __future__ import annotations

import base64
import json
import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from polar_pipeline.accesslink import (
    AccessLinkClient,
    AccessLinkError,
    InvalidGrant,
    NotRegistered,
    ReauthorizationRequired,
    TransientError,
)

TODAY = date(2026, 3, 1)
TOKEN = "user-token"


def night(day: date, **changes: Any) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "sleep_start_time": f"{(day - timedelta(days=1)).isoformat()}T23:30:00.000+01:00",
        "sleep_end_time": f"{day.isoformat()}T07:00:00.000+01:00",
        "sleep_score": 80,
        "hypnogram": {"23:30": 3, "00:10": 4, "07:00": 0},
    } | changes


def activity(day: date) -> dict[str, Any]:
    return {
        "start_time": f"{day.isoformat()}T00:00",
        "end_time": f"{day.isoformat()}T23:59:59",
        "steps": 9000,
    }


def exercise(exercise_id: str, day: date, **changes: Any) -> dict[str, Any]:
    return {
        "id": exercise_id,
        "start_time": f"{day.isoformat()}T07:50:17",
        "start_time_utc_offset": 60,
        "duration": "PT2460.605S",
    } | changes


class FakeClock:
    """Monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Handler = Callable[[httpx.Request], httpx.Response]


class FakeAccessLink:
    """Routes a handful of v3 paths; ``script`` injects one answer per upcoming request."""

    def __init__(self, today: date = TODAY) -> None:
        self.today = today
        self.nights = [night(today - timedelta(days=n)) for n in range(28)]
        self.exercises = [
            exercise("a1", today - timedelta(days=3)),
            exercise("b2", today - timedelta(days=40)),
        ]
        self.requests: list[httpx.Request] = []
        self.script: list[Handler] = []
        self.rate_headers: Callable[[int], dict[str, str]] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.script.pop(0)(request) if self.script else self.route(request)
        response.headers["Date"] = format_datetime(
            datetime.combine(self.today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12), usegmt=True
        )
        if self.rate_headers is not None:
            response.headers.update(self.rate_headers(len(self.requests)))
        return response

    def route(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401)
        path = request.url.path
        if path == "/v3/users/sleep":
            return httpx.Response(200, json={"nights": self.nights})
        if path.startswith("/v3/users/sleep/"):
            wanted = path.rsplit("/", 1)[1]
            found = [n for n in self.nights if n["date"] == wanted]
            return httpx.Response(200, json=found[0]) if found else httpx.Response(404)
        if path == "/v3/users/activities":
            params = request.url.params
            if "from" not in params:
                first, last = self.today - timedelta(days=27), self.today
            else:
                first, last = date.fromisoformat(params["from"]), date.fromisoformat(params["to"])
                if (last - first).days >= 28 or (self.today - first).days > 364 or last > self.today:
                    return httpx.Response(400, json={"message": f"bad range {first}..{last}"})
            days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
            return httpx.Response(200, json=[activity(day) for day in days])
        if path == "/v3/exercises":
            return httpx.Response(200, json=self.exercises)
        if path == "/v3/users/continuous-heart-rate":
            first, last = (
                date.fromisoformat(request.url.params["from"]),
                date.fromisoformat(request.url.params["to"]),
            )
            days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
            samples = [{"heart_rate": 60, "sample_time": "00:02:08"}]
            return httpx.Response(
                200,
                json={"heart_rates": [{"date": d.isoformat(), "heart_rate_samples": samples} for d in days]},
            )
        return httpx.Response(404)


@pytest.fixture
def fake() -> FakeAccessLink:
    return FakeAccessLink()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(fake: FakeAccessLink, clock: FakeClock) -> Iterator[AccessLinkClient]:
    with make_client(fake, clock) as instance:
        yield instance


def make_client(fake: FakeAccessLink, clock: FakeClock, **options: Any) -> AccessLinkClient:
    return AccessLinkClient(
        "https://www.polaraccesslink.com",
        token_url="https://polarremote.com/v2/oauth2/token",
        client_id="sim-client",
        client_secret="sim-secret",
        transport=httpx.MockTransport(fake),
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(7),
        **options,
    )


def respond(status: int, **kwargs: Any) -> Handler:
    return lambda request: httpx.Response(status, **kwargs)


# -- auth and registration -------------------------------------------------------------------------------


def test_exchange_code_uses_basic_auth_and_form(fake: FakeAccessLink, client: AccessLinkClient) -> None:
    grant_body = {
        "access_token": TOKEN,
        "token_type": "bearer",
        "expires_in": 31535999,
        "x_user_id": 10000001,
    }
    fake.script = [respond(200, json=grant_body)]
    grant = client.exchange_code("the-code", redirect_uri="http://localhost/cb")
    assert grant.access_token == TOKEN and grant.x_user_id == 10000001
    (request,) = fake.requests
    assert str(request.url) == "https://polarremote.com/v2/oauth2/token"
    expected = base64.b64encode(b"sim-client:sim-secret").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.content.decode())
    assert form == {
        "grant_type": ["authorization_code"],
        "code": ["the-code"],
        "redirect_uri": ["http://localhost/cb"],
    }


def test_invalid_grant(fake: FakeAccessLink, client: AccessLinkClient) -> None:
    fake.script = [respond(400, json={"error": "invalid_grant"})]
    with pytest.raises(InvalidGrant, match="invalid_grant"):
        client.exchange_code("reused")
    assert "redirect_uri" not in parse_qs(fake.requests[0].content.decode())


def test_register_tolerates_409(fake: FakeAccessLink, client: AccessLinkClient) -> None:
    user = {"polar-user-id": 10000001, "member-id": "m-1", "registration-date": "2026-03-01T12:00:00.000Z"}
    fake.script = [respond(200, json=user), respond(409, json={"message": "already registered"})]
    first = client.register_user(TOKEN, "m-1")
    assert first.user is not None and first.user.polar_user_id == 10000001 and not first.already_registered
    assert json.loads(fake.requests[0].content) == {"member-id": "m-1"}
    second = client.register_user(TOKEN, "m-1")
    assert second.already_registered and second.user is None


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (401, ReauthorizationRequired, "re-authorize"),
        (403, NotRegistered, "not registered or consent missing"),
        (400, AccessLinkError, "date too old"),
        (418, AccessLinkError, "418"),
    ],
)
def test_status_codes_map_to_errors(
    fake: FakeAccessLink, client: AccessLinkClient, status: int, error: type[Exception], text: str
) -> None:
    fake.script = [respond(status, json={"message": "date too old"})]
    with pytest.raises(error, match=text) as caught:
        client.fetch_sleep(TOKEN, TODAY, TODAY)
    assert isinstance(caught.value, AccessLinkError) and caught.value.status_code == status
    assert len(fake.requests) == 1  # client errors are not retried


def test_get_user_and_deregister(fake: FakeAccessLink, client: AccessLinkClient) -> None:
    fake.script = [respond(204), respond(204)]
    assert client.get_user(TOKEN, 10000001) is None
    client.deregister_user(TOKEN, 10000001)
    assert [r.method for r in fake.requests] == ["GET", "DELETE"]
    assert fake.requests[1].url.path == "/v3/users/10000001"


# -- request plans ---------------------------------------------------------------------------------------


def test_sleep_first_call_is_the_list_and_learns_today(
    fake: FakeAccessLink, client: AccessLinkClient
) -> None:
    result = client.fetch_sleep(TOKEN, TODAY - timedelta(days=364), TODAY)
    assert result.requests == 1 and result.server_today == TODAY
    assert [r.url.path for r in fake.requests] == ["/v3/users/sleep"]
    assert len(result.records) == 28 and result.days_outside_window == 337
    assert [n.day for n in result.records] == sorted(n.day for n in result.records)


def test_sleep_single_day_uses_by_date_and_404_is_no_data(
    fake: FakeAccessLink, client: AccessLinkClient
) -> None:
    client.fetch_sleep(TOKEN, TODAY, TODAY)  # learns today
    fake.nights = [n for n in fake.nights if n["date"] != (TODAY - timedelta(days=2)).isoformat()]
    one = client.fetch_sleep(TOKEN, TODAY - timedelta(days=1), TODAY - timedelta(days=1))
    missing = client.fetch_sleep(TOKEN, TODAY - timedelta(days=2), TODAY - timedelta(days=2))
    assert [n.key for n in one.records] == [(TODAY - timedelta(days=1)).isoformat()] and one.requests == 1
    assert missing.records == [] and missing.rejected == [] and missing.requests == 1
    assert fake.requests[-1].url.path == f"/v3/users/sleep/{(TODAY - timedelta(days=2)).isoformat()}"


def test_sleep_days_older_than_the_window_are_not_requested(
    fake: FakeAccessLink, client: AccessLinkClient
) -> None:
    client.fetch_sleep(TOKEN, TODAY, TODAY)
    old = client.fetch_sleep(TOKEN, TODAY - timedelta(days=100), TODAY - timedelta(days=40))
    assert old.requests == 0 and old.records == [] and old.days_outside_window == 61
    two = client.fetch_sleep(TOKEN, TODAY - timedelta(days=30), TODAY - timedelta(days=26))
    assert (
        two.requests == 1 and two.days_outside_window == 3 and fake.requests[-1].url.path == "/v3/users/sleep"
    )


def test_records_outside_the_range_are_kept(fake: FakeAccessLink, client: AccessLinkClient) -> None:
    result = client.fetch_sleep(TOKEN, TODAY - timedelta(days=1), TODAY)
    assert len(result.records) == 28  # the list answered 28 days; the warehouse keeps them all


def test_activity_365_days_costs_14_calls_within_the_api_limits(
    fake: FakeAccessLink, client: AccessLinkClient
) -> None:
    result = client.fetch_activity(TOKEN, TODAY - timedelta(days=364), TODAY)
    assert result.requests == 14 and len(fake.requests) == 14
    assert [r.day for r in result.records] == [TODAY - timedelta(days=n) for n in range(364, -1, -1)]
    assert fake.requests[0].url.params.get("from") is None  # fresh client: the plain 28-day list first
    ranges = [(r.url.params["from"], r.url.params["to"]) for r in fake.requests[1:]]
    assert min(first for first, _ in ranges) == (TODAY - timedelta(days=364)).isoformat()
    # a warm client needs the same count, all as ranges
    again = client.fetch_activity(TOKEN, TODAY - timedelta(days=364), TODAY)
    assert again.requests == 14 and {r.key for r in again.records} == {r.key for r in result.records}
    assert all("from" in r.url.params for r in fake.requests[14:])


def test_activity_older_than_365_days_is_not_requested(
    fake: FakeAccessLink, client: AccessLinkClient
) -> None:
    client.fetch_sleep(TOKEN, TODAY, TODAY)
    result = client.fetch_activity(
        TOKEN, TODAY - timedelta(days=400), TODAY - timedelta(days=360), samples=True
    )
    assert result.days_outside_window == 36 and result.requests == 1
    params = fake.requests[-1].url.params
    assert (params["from"], params["to"]) == (
        (TODAY - timedelta(days=364)).isoformat(),
        (TODAY - timedelta(days=360)).isoformat(),
    )
    assert params["steps"] == params["activity_zones"] == params["inactivity_stamps"] == "true"


def test_exercises_one_call_with_samples_and_zones_dedupes_by_id(
    fake: FakeAccessLink, client: AccessLinkClient
) -> None:
    fake.exercises = [*fake.exercises, fake.exercises[0]]
    result = client.fetch_exercises(TOKEN, TODAY - timedelta(days=364), TODAY)
    assert result.requests == 1 and [e.key for e in result.records] == ["b2", "a1"]
    params = fake.requests[0].url.params
    assert (params["samples"], params["zones"]) == ("true", "true")
    assert result.days_outside_window == 335


def test_continuous_hr_fresh_client_asks_the_newest_28_days_once(
    fake: FakeAccessLink, client: AccessLinkClient
) -> None:
    result = client.fetch_continuous_hr(TOKEN, TODAY - timedelta(days=364), TODAY)
    assert result.requests == 1 and len(result.records) == 28 and result.days_outside_window == 337
    params = fake.requests[0].url.params
    assert (params["from"], params["to"]) == ((TODAY - timedelta(days=27)).isoformat(), TODAY.isoformat())
    later = client.fetch_continuous_hr(TOKEN, TODAY - timedelta(days=40), TODAY - timedelta(days=20))
    assert later.requests == 1 and later.days_outside_window == 13
    assert fake.requests[1].url.params["from"] == (TODAY - timedelta(days=27)).isoformat()


def test_bad_records_are_rejected_not_raised(fake: FakeAccessLink, client: AccessLinkClient) -> None:
    fake.nights[3] = night(TODAY - timedelta(days=3), sleep_score=180)
    result = client.fetch_sleep(TOKEN, TODAY - timedelta(days=27), TODAY)
    assert len(result.records) == 27
    (reject,) = result.rejected
    assert reject.key == (TODAY - timedelta(days=3)).isoformat() and "sleep_score=180" in reject.reason


def test_empty_list_and_204_are_no_data(fake: FakeAccessLink, client: AccessLinkClient) -> None:
    fake.script = [respond(200, json={"nights": []}), respond(204)]
    assert client.fetch_sleep(TOKEN, TODAY, TODAY).records == []
    assert client.fetch_sleep(TOKEN, TODAY - timedelta(days=5), TODAY).records == []


def test_last_date_header_wins(fake: FakeAccessLink, client: AccessLinkClient) -> None:
    """uvicorn prepends its own wall-clock Date; the application's (simulated) one comes last."""

    def two_dates(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[], headers=[("Date", "Wed, 26 Nov 2025 10:00:00 GMT")])

    fake.script = [two_dates]
    client.fetch_exercises(TOKEN, TODAY, TODAY)
    assert client.server_today == TODAY


# -- retries ---------------------------------------------------------------------------------------------


def test_5xx_and_malformed_json_are_retried_with_full_jitter(
    fake: FakeAccessLink, clock: FakeClock, client: AccessLinkClient
) -> None:
    fake.script = [respond(503), respond(500), respond(200, content=b'{"nights": [')]
    result = client.fetch_sleep(TOKEN, TODAY, TODAY)
    assert result.requests == 4 and len(result.records) == 28
    expected = random.Random(7)
    assert clock.sleeps == [expected.uniform(0, 0.5 * 2**attempt) for attempt in range(3)]


def test_timeouts_and_connection_errors_are_retried(fake: FakeAccessLink, client: AccessLinkClient) -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    fake.script = [timeout, refused]
    assert client.fetch_exercises(TOKEN, TODAY, TODAY).requests == 3


def test_retries_exhausted_raise_transient_error(fake: FakeAccessLink, clock: FakeClock) -> None:
    fake.script = [respond(502)] * 10
    client = make_client(fake, clock, max_retries=3, backoff_base=1.0, backoff_max=3.0)
    with client, pytest.raises(TransientError, match="502 server error; gave up after 4 attempts"):
        client.fetch_exercises(TOKEN, TODAY, TODAY)
    assert len(fake.requests) == 4
    assert all(0 <= pause <= cap for pause, cap in zip(clock.sleeps, [1.0, 2.0, 3.0], strict=True))


def test_429_honours_retry_after(fake: FakeAccessLink, clock: FakeClock, client: AccessLinkClient) -> None:
    fake.script = [respond(429, headers={"Retry-After": "7"})]
    assert client.fetch_exercises(TOKEN, TODAY, TODAY).requests == 2
    assert clock.sleeps == [7.0]


def test_429_without_retry_after_waits_for_the_exhausted_window(
    fake: FakeAccessLink, clock: FakeClock, client: AccessLinkClient
) -> None:
    headers = {"RateLimit-Usage": "12, 40", "RateLimit-Limit": "10, 5000", "RateLimit-Reset": "42, 80000"}
    fake.script = [respond(429, headers=headers)]
    assert client.fetch_exercises(TOKEN, TODAY, TODAY).requests == 2
    assert clock.sleeps == [pytest.approx(42.05)]


def test_spurious_429_without_any_hint_backs_off_exponentially(
    fake: FakeAccessLink, clock: FakeClock, client: AccessLinkClient
) -> None:
    fake.script = [respond(429), respond(429)]
    assert client.fetch_exercises(TOKEN, TODAY, TODAY).requests == 3
    expected = random.Random(7)
    assert clock.sleeps == [expected.uniform(0, 0.5), expected.uniform(0, 1.0)]


def test_token_exchange_retries_server_errors(fake: FakeAccessLink, client: AccessLinkClient) -> None:
    fake.script = [respond(503), respond(200, json={"access_token": "t", "x_user_id": 5})]
    assert client.exchange_code("c").x_user_id == 5 and client.requests_made == 2


# -- pacing ----------------------------------------------------------------------------------------------


def test_pacing_never_exceeds_the_advertised_limit(fake: FakeAccessLink, clock: FakeClock) -> None:
    """A fake server with a fixed 10-request / 60 s window: 35 requests go through without a 429."""
    window_start = clock.now
    sent_in_window: list[float] = []
    over_limit: list[int] = []

    def headers(count: int) -> dict[str, str]:
        nonlocal window_start
        if clock.now >= window_start + 60:
            window_start += 60 * ((clock.now - window_start) // 60)
            sent_in_window.clear()
        sent_in_window.append(clock.now)
        if len(sent_in_window) > 10:
            over_limit.append(count)
        reset = window_start + 60 - clock.now
        return {
            "RateLimit-Usage": f"{len(sent_in_window)}, {count}",
            "RateLimit-Limit": "10, 5000",
            "RateLimit-Reset": f"{math.ceil(reset)}, 86000",
        }

    fake.rate_headers = headers
    with make_client(fake, clock, rate_limit_margin=0) as client:
        for _ in range(35):
            client.fetch_exercises(TOKEN, TODAY, TODAY)
    assert over_limit == [] and len(fake.requests) == 35
    assert clock.now - 1000.0 >= 180  # 35 requests at 10 per minute need three waits
    assert all(pause <= 60.1 for pause in clock.sleeps)


def test_margin_keeps_requests_in_reserve(fake: FakeAccessLink, clock: FakeClock) -> None:
    fake.rate_headers = lambda count: {
        "RateLimit-Usage": f"{count}, {count}",
        "RateLimit-Limit": "500, 5000",
        "RateLimit-Reset": "100, 86000",
    }
    with make_client(fake, clock, rate_limit_margin=2) as client:
        fake.script = []
        for _ in range(3):
            client.fetch_exercises(TOKEN, TODAY, TODAY)
        assert clock.sleeps == []
        fake.rate_headers = lambda count: {
            "RateLimit-Usage": "498, 600",
            "RateLimit-Limit": "500, 5000",
            "RateLimit-Reset": "30, 86000",
        }
        client.fetch_exercises(TOKEN, TODAY, TODAY)
        client.fetch_exercises(TOKEN, TODAY, TODAY)
    assert clock.sleeps == [pytest.approx(30.05)]
