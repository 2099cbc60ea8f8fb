"""A 5-user x 2-year sweep of the list and by-date endpoints, collecting history the way a sync would."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx

from polar_pipeline.simulator import FaultConfig, SimulatorConfig, create_app
from tests.support.servers import serve_asgi

TODAY = dt.date(2025, 6, 30)
HISTORY_DAYS = 730
USERS = 5
# 27-day steps: a night that syncs after 12:00 UTC is listed only from the next day on, so back-to-back
# 28-day snapshots would lose it (exactly as a real sync would).
STEP_DAYS = 27


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, (str(response.url), response.status_code)
    return response.json()


def test_five_users_two_years_sweep_collects_every_night_and_exercise() -> None:
    started = time.perf_counter()
    unlimited = FaultConfig(short_limit=1_000_000, long_limit=1_000_000)
    config = SimulatorConfig(seed=99, users=USERS, today=TODAY, history_days=HISTORY_DAYS, faults=unlimited)
    app = create_app(config)
    startup = time.perf_counter() - started
    history_start = TODAY - dt.timedelta(days=HISTORY_DAYS)
    collected: dict[str, dict[int, set[str]]] = {
        kind: {} for kind in ("nights", "recharges", "activities", "exercises")
    }
    requests = 0
    with serve_asgi(app) as base_url, httpx.Client(base_url=base_url, timeout=120) as client:
        tokens = {user["x_user_id"]: user["access_token"] for user in client.get("/sim/users").json()}
        clock = history_start + dt.timedelta(days=STEP_DAYS)
        client.post("/sim/clock", json={"today": clock.isoformat()})
        for user, token in tokens.items():
            assert (
                client.post("/v3/users", headers=auth(token), json={"member-id": str(user)}).status_code
                == 200
            )
            for found in collected.values():
                found[user] = set()

        sweep_started = time.perf_counter()
        while True:
            for user, token in tokens.items():
                headers = auth(token)
                nights = ok(client.get("/v3/users/sleep", headers=headers))["nights"]
                collected["nights"][user] |= {night["date"] for night in nights}
                recharges = ok(client.get("/v3/users/nightly-recharge", headers=headers))["recharges"]
                collected["recharges"][user] |= {recharge["date"] for recharge in recharges}
                activities = ok(client.get("/v3/users/activities", headers=headers))
                collected["activities"][user] |= {activity["start_time"][:10] for activity in activities}
                exercises = ok(client.get("/v3/exercises", headers=headers))
                collected["exercises"][user] |= {exercise["id"] for exercise in exercises}
                oldest = (clock - dt.timedelta(days=27)).isoformat()
                for path in (f"/v3/users/sleep/{oldest}", f"/v3/users/nightly-recharge/{oldest}"):
                    assert client.get(path, headers=headers).status_code in (200, 404)
                ok(client.get(f"/v3/users/activities/{oldest}", headers=headers))
                requests += 7
            if clock == TODAY:
                break
            clock = min(clock + dt.timedelta(days=STEP_DAYS), TODAY)
            client.post("/sim/clock", json={"today": clock.isoformat()})
        sweep_seconds = time.perf_counter() - sweep_started

        backfill_started = time.perf_counter()
        for token in tokens.values():
            first = TODAY - dt.timedelta(days=364)
            while first <= TODAY:
                last = min(first + dt.timedelta(days=27), TODAY)
                params = {"from": first.isoformat(), "to": last.isoformat()}
                chunk = ok(client.get("/v3/users/activities", headers=auth(token), params=params))
                assert len(chunk) == (last - first).days + 1
                first = last + dt.timedelta(days=1)
                requests += 1
        first_token = next(iter(tokens.values()))
        for back in range(365):
            ok(
                client.get(
                    f"/v3/users/activities/{TODAY - dt.timedelta(days=back)}", headers=auth(first_token)
                )
            )
            requests += 1
        backfill_seconds = time.perf_counter() - backfill_started

        for user in tokens:
            yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
            days = client.get(f"/sim/ground-truth/{user}/daily", params={"to": yesterday}).json()
            worn = {day["date"] for day in days if day["worn"]}
            assert len(worn) >= 0.85 * HISTORY_DAYS
            assert worn <= collected["nights"][user]
            assert len(collected["nights"][user] - worn) <= 1  # today's night may be listed as well
            assert {day["date"] for day in days if day["has_recharge"]} <= collected["recharges"][user]
            first_listed = (history_start + dt.timedelta(days=1)).isoformat()
            assert {day["date"] for day in days if day["date"] >= first_listed} <= collected["activities"][
                user
            ]
            registered = (history_start + dt.timedelta(days=STEP_DAYS + 1)).isoformat()
            uploaded = (TODAY - dt.timedelta(days=2)).isoformat()  # uploads lag by up to ~30 h
            expected = {e for day in days if registered <= day["date"] < uploaded for e in day["exercises"]}
            assert expected <= collected["exercises"][user]
        stats = client.get("/sim/stats").json()
    print(
        f"\nstart-up {startup * 1000:.1f} ms; sweep of {USERS} users x {HISTORY_DAYS} days "
        f"in {STEP_DAYS}-day steps: {sweep_seconds:.1f} s; activity back-fill "
        f"(28-day ranges + 365 by-date): {backfill_seconds:.1f} s; "
        f"{requests} data requests, server counted {stats['requests']}"
    )
    assert stats["rate_limited"] == 0 and stats["requests"] >= requests
