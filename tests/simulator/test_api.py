"""Simulator HTTP contract: auth, OAuth, registration, status codes, windows, clock, headers, determinism."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from polar_pipeline.simulator import SimulatorConfig, create_app
from polar_pipeline.simulator import accounts as sim_accounts
from tests.support.servers import serve_asgi

TODAY = dt.date(2025, 6, 30)
ATHLETE, CASUAL, IRREGULAR, NO_WORKOUTS = 10000001, 10000002, 10000003, 10000004
BASIC = ("sim-client", "sim-secret")


@pytest.fixture
def sim() -> Iterator[httpx.Client]:
    app = create_app(SimulatorConfig(seed=7, users=4, today=TODAY, history_days=500))
    with serve_asgi(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


def tokens(client: httpx.Client) -> dict[int, str]:
    return {user["x_user_id"]: user["access_token"] for user in client.get("/sim/users").json()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(client: httpx.Client, token: str, member_id: str | None = None) -> httpx.Response:
    return client.post(
        "/v3/users", headers=bearer(token), json={"member-id": member_id or f"member-{token[-6:]}"}
    )


def set_today(client: httpx.Client, day: dt.date) -> None:
    assert client.post("/sim/clock", json={"today": day.isoformat()}).json()["today"] == day.isoformat()


def ground_truth_days(client: httpx.Client, user: int) -> list[dict[str, Any]]:
    return list(client.get(f"/sim/ground-truth/{user}/daily").json())


DATA_PATHS = (
    "/v3/users/sleep",
    "/v3/users/sleep/available",
    "/v3/users/sleep/2025-06-29",
    "/v3/users/nightly-recharge",
    "/v3/users/nightly-recharge/2025-06-29",
    "/v3/users/activities",
    "/v3/users/activities/2025-06-29",
    "/v3/exercises",
    "/v3/exercises/abcdefgh",
    "/v3/users/continuous-heart-rate/2025-06-29",
    "/v3/users/cardio-load/",
)


def test_data_endpoints_answer_401_without_valid_token_and_403_before_registration(sim: httpx.Client) -> None:
    token = tokens(sim)[ATHLETE]
    for path in DATA_PATHS:
        assert sim.get(path).status_code == 401, path
        assert sim.get(path, headers=bearer("sim-not-a-token")).status_code == 401, path
        assert sim.get(path, headers=bearer(token)).status_code == 403, path
    assert register(sim, token).status_code == 200
    assert sim.get("/v3/users/sleep", headers=bearer(token)).status_code == 200


def test_registration_user_object_conflicts_and_deregistration(sim: httpx.Client) -> None:
    all_tokens = tokens(sim)
    token = all_tokens[ATHLETE]
    assert sim.get(f"/v3/users/{ATHLETE}", headers=bearer(token)).status_code == 204
    assert sim.post("/v3/users", headers=bearer(token), json={}).status_code == 400
    created = register(sim, token, "member-a")
    assert created.status_code == 200
    user = created.json()
    assert set(user) == {
        "polar-user-id",
        "member-id",
        "registration-date",
        "first-name",
        "last-name",
        "birthdate",
        "gender",
        "weight",
        "height",
        "extra-info",
    }
    assert user["polar-user-id"] == ATHLETE and user["member-id"] == "member-a"
    assert user["registration-date"] == "2025-06-30T12:00:00.000Z"
    assert register(sim, token, "member-b").status_code == 409
    assert register(sim, all_tokens[CASUAL], "member-a").status_code == 409  # member-id taken
    assert sim.get(f"/v3/users/{ATHLETE}", headers=bearer(token)).json() == user
    assert sim.get(f"/v3/users/{CASUAL}", headers=bearer(token)).status_code == 403
    assert sim.get("/v3/users/99999999", headers=bearer(token)).status_code == 204
    assert sim.delete(f"/v3/users/{CASUAL}", headers=bearer(token)).status_code == 403

    deleted = sim.delete(f"/v3/users/{ATHLETE}", headers=bearer(token))
    assert deleted.status_code == 204 and deleted.content == b""
    assert sim.get("/v3/users/sleep", headers=bearer(token)).status_code == 401
    assert sim.get(f"/v3/users/{ATHLETE}", headers=bearer(token)).status_code == 401

    # Re-authorizing issues a new token; the user must register again.
    code = authorize(sim, sim_user=ATHLETE)["code"]
    exchanged = sim.post(
        "/v2/oauth2/token", auth=BASIC, data={"grant_type": "authorization_code", "code": code}
    )
    new_token = exchanged.json()["access_token"]
    assert new_token != token
    assert sim.get("/v3/users/sleep", headers=bearer(token)).status_code == 401
    assert sim.get("/v3/users/sleep", headers=bearer(new_token)).status_code == 403
    assert register(sim, new_token).status_code == 200
    assert sim.get("/v3/users/sleep", headers=bearer(new_token)).status_code == 200


def authorize(client: httpx.Client, **params: Any) -> dict[str, str]:
    query = {"response_type": "code", "client_id": "sim-client", **{k: str(v) for k, v in params.items()}}
    response = client.get("/oauth2/authorization", params=query)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    return {key: values[0] for key, values in parse_qs(location.query).items()} | {
        "_target": f"{location.scheme}://{location.netloc}{location.path}"
    }


def test_oauth_code_flow_assigns_users_in_order_and_rejects_reused_codes(sim: httpx.Client) -> None:
    first = authorize(sim, state="xyz")
    assert first["_target"] == "http://127.0.0.1/callback" and first["state"] == "xyz"
    form = {"grant_type": "authorization_code", "code": first["code"]}
    assert sim.post("/v2/oauth2/token", auth=("sim-client", "wrong"), data=form).status_code == 401
    assert sim.post("/v2/oauth2/token", data=form).status_code == 401
    exchanged = sim.post("/v2/oauth2/token", auth=BASIC, data=form)
    assert exchanged.status_code == 200
    body = exchanged.json()
    assert body == {
        "access_token": tokens(sim)[ATHLETE],
        "token_type": "bearer",
        "expires_in": 31535999,
        "x_user_id": ATHLETE,
    }
    reused = sim.post("/v2/oauth2/token", auth=BASIC, data=form)
    assert reused.status_code == 400 and reused.json() == {"error": "invalid_grant"}
    unknown = sim.post("/v2/oauth2/token", auth=BASIC, data=form | {"code": "nope"})
    assert unknown.status_code == 400 and unknown.json() == {"error": "invalid_grant"}
    second = authorize(sim)
    assert (
        sim.post("/v2/oauth2/token", auth=BASIC, data=form | {"code": second["code"]}).json()["x_user_id"]
        == CASUAL
    )
    assert (
        sim.get("/oauth2/authorization", params={"response_type": "code", "client_id": "x"}).status_code
        == 400
    )


def test_oauth_redirect_uri_must_match_exactly(sim: httpx.Client) -> None:
    callback = "http://127.0.0.1:9999/cb"
    grant = authorize(sim, sim_user=IRREGULAR, redirect_uri=callback, state="s1")
    assert grant["_target"] == callback
    form = {"grant_type": "authorization_code", "code": grant["code"]}
    for wrong in ({}, {"redirect_uri": "http://127.0.0.1:9999/other"}):
        response = sim.post("/v2/oauth2/token", auth=BASIC, data=form | wrong)
        assert response.status_code == 400 and response.json() == {"error": "invalid_grant"}
    ok = sim.post("/v2/oauth2/token", auth=BASIC, data=form | {"redirect_uri": callback})
    assert ok.status_code == 200 and ok.json()["x_user_id"] == IRREGULAR


def test_oauth_codes_expire(sim: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    code = authorize(sim, sim_user=CASUAL)["code"]
    monkeypatch.setattr(sim_accounts, "CODE_LIFETIME_SECONDS", 0.0)
    time.sleep(0.02)
    response = sim.post(
        "/v2/oauth2/token", auth=BASIC, data={"grant_type": "authorization_code", "code": code}
    )
    assert response.status_code == 400 and response.json() == {"error": "invalid_grant"}


def test_date_and_rate_limit_headers_on_every_response(sim: httpx.Client) -> None:
    token = tokens(sim)[ATHLETE]
    for response in (sim.get("/sim/clock"), sim.get("/v3/users/sleep", headers=bearer(token))):
        assert response.headers.get_list("date") == ["Mon, 30 Jun 2025 12:00:00 GMT"]
        assert parsedate_to_datetime(response.headers["date"]).date() == TODAY
        for name in ("ratelimit-usage", "ratelimit-limit", "ratelimit-reset"):
            assert len(response.headers[name].split(", ")) == 2
    assert sim.get("/v3/users/sleep").headers["ratelimit-limit"] == "500, 5000"  # no registered users yet
    register(sim, token)
    after = sim.get("/v3/users/sleep", headers=bearer(token))
    assert after.headers["ratelimit-limit"] == "520, 5100"
    assert after.headers["ratelimit-usage"] == "4, 4"
    short_reset, long_reset = (int(part) for part in after.headers["ratelimit-reset"].split(", "))
    assert 0 < short_reset <= 900 and 0 < long_reset <= 86400


def test_clock_moves_the_windows_and_the_date_header(sim: httpx.Client) -> None:
    token = tokens(sim)[CASUAL]
    register(sim, token)
    nights = sim.get("/v3/users/sleep", headers=bearer(token)).json()["nights"]
    dates = [dt.date.fromisoformat(night["date"]) for night in nights]
    assert min(dates) >= TODAY - dt.timedelta(days=27) and max(dates) <= TODAY
    assert len(dates) >= 20 and dates == sorted(dates)
    moved = sim.post("/sim/clock", json={"advance_days": 40}).json()
    assert moved["today"] == "2025-08-09" and moved["now"].startswith("2025-08-09T12:00:00")
    later = sim.get("/v3/users/sleep", headers=bearer(token))
    assert parsedate_to_datetime(later.headers["date"]).date() == dt.date(2025, 8, 9)
    later_dates = [dt.date.fromisoformat(night["date"]) for night in later.json()["nights"]]
    assert min(later_dates) >= dt.date(2025, 8, 9) - dt.timedelta(days=27)
    assert not set(later_dates) & set(dates)
    assert sim.post("/sim/clock", json={"today": "2025-07-01"}).json()["today"] == "2025-07-01"
    assert sim.post("/sim/clock", json={"today": "July"}).status_code == 400
    assert sim.get("/sim/clock").json()["today"] == "2025-07-01"


def test_sleep_and_recharge_by_date_rules(sim: httpx.Client) -> None:
    token = tokens(sim)[IRREGULAR]
    register(sim, token)
    truth = {day["date"]: day for day in ground_truth_days(sim, IRREGULAR)}
    window = [TODAY - dt.timedelta(days=n) for n in range(28)]
    worn = [d for d in window if truth[d.isoformat()]["worn"]]
    assert sim.get(f"/v3/users/sleep/{worn[-1]}", headers=bearer(token)).status_code == 200
    older_worn = next(
        d for n in range(28, 60) if truth[(d := TODAY - dt.timedelta(days=n)).isoformat()]["worn"]
    )
    assert sim.get(f"/v3/users/sleep/{older_worn}", headers=bearer(token)).status_code == 404
    assert sim.get(f"/v3/users/nightly-recharge/{older_worn}", headers=bearer(token)).status_code == 404
    assert sim.get("/v3/users/sleep/2025-13-01", headers=bearer(token)).status_code == 400
    assert sim.get("/v3/users/nightly-recharge/yesterday", headers=bearer(token)).status_code == 400
    assert sim.get("/v3/users/sleep/2025-07-05", headers=bearer(token)).status_code == 404  # future
    listed = {night["date"] for night in sim.get("/v3/users/sleep", headers=bearer(token)).json()["nights"]}
    assert listed == {d.isoformat() for d in worn}
    available = sim.get("/v3/users/sleep/available", headers=bearer(token)).json()["available"]
    assert {item["date"] for item in available} == listed
    assert set(available[0]) == {"date", "start_time", "end_time"}
    # Over the whole history: a night with sleep but no Nightly Recharge -> sleep 200, recharge 404.
    without_recharge = [d for d, day in truth.items() if day["worn"] and not day["has_recharge"]]
    assert len(without_recharge) >= 5
    day = dt.date.fromisoformat(without_recharge[-1])
    set_today(sim, day)
    assert sim.get(f"/v3/users/sleep/{day}", headers=bearer(token)).status_code in (200, 404)
    set_today(sim, day + dt.timedelta(days=1))
    assert sim.get(f"/v3/users/sleep/{day}", headers=bearer(token)).status_code == 200
    assert sim.get(f"/v3/users/nightly-recharge/{day}", headers=bearer(token)).status_code == 404
    recharges = sim.get("/v3/users/nightly-recharge", headers=bearer(token)).json()["recharges"]
    assert day.isoformat() not in {item["date"] for item in recharges}


def test_a_night_appears_90_minutes_after_waking(sim: httpx.Client) -> None:
    """Find a night that ends after 10:30 UTC; at 12:00 UTC of its date it is not synced yet."""
    token = tokens(sim)[IRREGULAR]
    register(sim, token)
    late = None
    for day in ground_truth_days(sim, IRREGULAR):
        end_local = dt.datetime.fromisoformat(day["sleep_end"])
        end_utc = end_local - dt.timedelta(minutes=day["tz_offset_minutes"])
        if day["worn"] and dt.time(10, 30) < end_utc.time() < dt.time(12, 0):
            late = day
    assert late is not None
    day = dt.date.fromisoformat(late["date"])
    set_today(sim, day)
    assert sim.get(f"/v3/users/sleep/{day}", headers=bearer(token)).status_code == 404
    assert day.isoformat() not in {
        n["date"] for n in sim.get("/v3/users/sleep", headers=bearer(token)).json()["nights"]
    }
    set_today(sim, day + dt.timedelta(days=1))
    assert sim.get(f"/v3/users/sleep/{day}", headers=bearer(token)).status_code == 200


def test_activity_windows_ranges_and_204(sim: httpx.Client) -> None:
    token = tokens(sim)[NO_WORKOUTS]
    register(sim, token)
    auth = bearer(token)
    listed = sim.get("/v3/users/activities", headers=auth).json()
    assert [item["start_time"][:10] for item in listed] == [
        (TODAY - dt.timedelta(days=27 - n)).isoformat() for n in range(28)
    ]
    for path in ("/v3/users/activities", "/v3/users/activities/"):
        ranged = sim.get(path, headers=auth, params={"from": "2025-05-03", "to": "2025-05-31"})
        assert ranged.status_code == 200 and len(ranged.json()) == 29
    too_long = sim.get(
        "/v3/users/activities", headers=auth, params={"from": "2025-05-02", "to": "2025-05-31"}
    )
    assert too_long.status_code == 400
    oldest_ok = TODAY - dt.timedelta(days=365)
    assert (
        sim.get("/v3/users/activities", headers=auth, params={"from": oldest_ok.isoformat()}).status_code
        == 400
    )
    in_range = {"from": oldest_ok.isoformat(), "to": (oldest_ok + dt.timedelta(days=3)).isoformat()}
    assert len(sim.get("/v3/users/activities", headers=auth, params=in_range).json()) == 4
    too_old = {"from": (oldest_ok - dt.timedelta(days=1)).isoformat(), "to": oldest_ok.isoformat()}
    assert sim.get("/v3/users/activities", headers=auth, params=too_old).status_code == 400
    assert (
        sim.get(
            "/v3/users/activities", headers=auth, params={"from": "2025-06-10", "to": "2025-06-01"}
        ).status_code
        == 400
    )
    assert sim.get(f"/v3/users/activities/{oldest_ok}", headers=auth).status_code == 200
    assert (
        sim.get(f"/v3/users/activities/{oldest_ok - dt.timedelta(days=1)}", headers=auth).status_code == 400
    )
    assert sim.get("/v3/users/activities/2025-02-30", headers=auth).status_code == 400
    future = sim.get("/v3/users/activities/2025-07-03", headers=auth)
    assert future.status_code == 204 and future.content == b""
    # history_days=500 starts 2024-02-16: an older in-window date has no data -> 204
    set_today(sim, dt.date(2024, 3, 1))
    assert sim.get("/v3/users/activities/2024-02-10", headers=auth).status_code == 204
    assert sim.get("/v3/users/activities/2024-02-20", headers=auth).status_code == 200


def test_exercises_only_after_registration_and_within_30_days(sim: httpx.Client) -> None:
    token = tokens(sim)[ATHLETE]
    auth = bearer(token)
    set_today(sim, TODAY - dt.timedelta(days=60))
    register(sim, token)
    registered_at = dt.datetime(2025, 5, 1, 12, tzinfo=dt.UTC)
    assert sim.get("/v3/exercises", headers=auth).json() == []
    set_today(sim, TODAY)
    items = sim.get("/v3/exercises", headers=auth).json()
    now = dt.datetime(2025, 6, 30, 12, tzinfo=dt.UTC)
    uploads = [dt.datetime.fromisoformat(item["upload_time"]) for item in items]
    assert len(items) >= 15
    assert all(now - dt.timedelta(days=30) < upload <= now for upload in uploads)
    assert uploads == sorted(uploads)
    assert len({item["id"] for item in items}) == len(items)
    first = items[0]
    by_id = sim.get(f"/v3/exercises/{first['id']}", headers=auth)
    assert by_id.status_code == 200 and by_id.json() == first
    assert sim.get("/v3/exercises/zzzzzzzz", headers=auth).status_code == 404
    # An exercise older than 30 days is no longer listed but still served by id (uploaded after registration).
    truth = ground_truth_days(sim, ATHLETE)
    old_ids = [
        eid for day in truth if "2025-05-10" <= day["date"] <= "2025-05-20" for eid in day["exercises"]
    ]
    assert old_ids and not set(old_ids) & {item["id"] for item in items}
    assert sim.get(f"/v3/exercises/{old_ids[0]}", headers=auth).status_code == 200
    before_registration = [
        eid for day in truth if "2025-04-01" <= day["date"] <= "2025-04-20" for eid in day["exercises"]
    ]
    assert sim.get(f"/v3/exercises/{before_registration[0]}", headers=auth).status_code == 404
    # Another user's token cannot read this user's exercise.
    other = bearer(tokens(sim)[CASUAL])
    register(sim, tokens(sim)[CASUAL])
    assert sim.get(f"/v3/exercises/{first['id']}", headers=other).status_code == 404
    assert registered_at < uploads[0]


def test_no_workouts_persona_has_no_exercises(sim: httpx.Client) -> None:
    truth = ground_truth_days(sim, NO_WORKOUTS)
    assert all(day["exercises"] == [] for day in truth)
    assert sum(bool(day["exercises"]) for day in ground_truth_days(sim, CASUAL)) > 100


def test_continuous_hr_and_cardio_load(sim: httpx.Client) -> None:
    token = tokens(sim)[ATHLETE]
    register(sim, token)
    auth = bearer(token)
    day = sim.get("/v3/users/continuous-heart-rate/2025-06-28", headers=auth)
    assert day.status_code == 200
    body = day.json()
    assert set(body) == {"polar_user", "date", "heart_rate_samples"} and body["date"] == "2025-06-28"
    assert len(body["heart_rate_samples"]) >= 280
    assert set(body["heart_rate_samples"][0]) == {"heart_rate", "sample_time"}
    assert sim.get("/v3/users/continuous-heart-rate/2025-05-01", headers=auth).status_code == 404
    assert sim.get("/v3/users/continuous-heart-rate/2025-5-1", headers=auth).status_code == 400
    ranged = sim.get(
        "/v3/users/continuous-heart-rate", headers=auth, params={"from": "2025-06-20", "to": "2025-06-22"}
    )
    assert [item["date"] for item in ranged.json()["heart_rates"]] == [
        "2025-06-20",
        "2025-06-21",
        "2025-06-22",
    ]
    assert (
        sim.get("/v3/users/continuous-heart-rate", headers=auth, params={"from": "2025-06-20"}).status_code
        == 400
    )
    cardio = sim.get("/v3/users/cardio-load/", headers=auth).json()
    assert len(cardio) == 28 and cardio[-1]["date"] == "2025-06-30"
    assert set(cardio[0]) == {
        "date",
        "cardio_load_status",
        "cardio_load",
        "strain",
        "tolerance",
        "cardio_load_ratio",
        "cardio_load_level",
    }
    assert set(cardio[0]["cardio_load_level"]) == {"very_low", "low", "medium", "high", "very_high"}
    assert all(item["cardio_load_status"] != "LOAD_STATUS_NOT_AVAILABLE" for item in cardio)
    assert sim.get("/v3/users/cardio-load/2025-06-01", headers=auth).json()[0]["date"] == "2025-06-01"
    assert sim.get("/v3/users/cardio-load/2024-01-01", headers=auth).json() == []
    assert sim.get("/v3/users/cardio-load/junk", headers=auth).status_code == 400
    assert len(sim.get("/v3/users/cardio-load/period/days/7", headers=auth).json()) == 7
    assert sim.get("/v3/users/cardio-load/period/days/181", headers=auth).status_code == 400


def test_unknown_routes_and_methods(sim: httpx.Client) -> None:
    assert sim.get("/v3/nothing-here").status_code == 404
    assert sim.put("/v3/users/sleep").status_code == 405
    assert sim.get("/sim/ground-truth/123").status_code == 404


def fetch_everything(base_url: str) -> list[bytes]:
    """Register all users, move the clock, and collect the raw bytes of every kind of payload."""
    bodies: list[bytes] = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        set_today(client, TODAY - dt.timedelta(days=12))
        for user, token in tokens(client).items():
            bodies.append(register(client, token, f"m{user}").content)
        set_today(client, TODAY)
        for token in tokens(client).values():
            auth = bearer(token)
            for path, params in (
                ("/v3/users/sleep", {}),
                ("/v3/users/nightly-recharge", {}),
                (
                    "/v3/users/activities",
                    {"steps": "true", "activity_zones": "true", "inactivity_stamps": "true"},
                ),
                ("/v3/exercises", {"samples": "true", "zones": "true", "route": "true"}),
                ("/v3/users/continuous-heart-rate/2025-06-29", {}),
                ("/v3/users/cardio-load/", {}),
            ):
                bodies.append(client.get(path, headers=auth, params=params).content)
        bodies.append(client.get(f"/sim/ground-truth/{ATHLETE}").content)
    return bodies


def test_same_seed_gives_byte_identical_payloads_and_other_seeds_differ() -> None:
    runs = []
    for seed in (11, 11, 12):
        config = SimulatorConfig(seed=seed, users=4, today=TODAY, history_days=200)
        with serve_asgi(create_app(config)) as base_url:
            runs.append(fetch_everything(base_url))
    assert runs[0] == runs[1]
    assert sum(len(body) for body in runs[0]) > 1_000_000
    differing = [a != b for a, b in zip(runs[0], runs[2], strict=True)]
    assert sum(differing) >= len(differing) - 8  # registrations and empty lists may coincide


def test_start_up_is_fast_and_lazy() -> None:
    started = time.perf_counter()
    app = create_app(SimulatorConfig(users=5, today=TODAY))
    elapsed = time.perf_counter() - started
    print(f"\nsimulator start-up with 5 users x 730 days: {elapsed * 1000:.1f} ms")
    assert len(app.models) == 5
    assert all(model.days_computed == 0 for model in app.models)
