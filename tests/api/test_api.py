"""The API over a real published snapshot, served by uvicorn on loopback."""

from __future__ import annotations

from datetime import date, timedelta

import httpx

from polar_api.app import create_app
from polar_pipeline.operations import publish, sync
from tests.conftest import Pipeline
from tests.support.servers import serve_asgi


def test_health_is_503_before_the_first_publish(pipeline: Pipeline) -> None:
    with serve_asgi(create_app(pipeline.settings)) as api:
        response = httpx.get(f"{api}/health", timeout=10)
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_sleep_route_returns_last_n_nights_with_upstream_field_names(pipeline: Pipeline) -> None:
    users = pipeline.add_users(2)
    pipeline.sim("POST", "/sim/clock", json={"today": (date.today() - timedelta(days=28)).isoformat()})
    assert sync(pipeline.settings, days=28, until=pipeline.sim_today(), instance=pipeline.instance).success
    pipeline.sim("POST", "/sim/clock", json={"today": date.today().isoformat()})
    assert sync(pipeline.settings, days=28, instance=pipeline.instance).success
    assert publish(pipeline.settings, instance=pipeline.instance)
    with serve_asgi(create_app(pipeline.settings)) as api:
        health = httpx.get(f"{api}/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["snapshot"]["generation"] == 1
        assert 0 <= health.json()["snapshot"]["age_seconds"] < 600

        nights = httpx.get(f"{api}/api/v1/users/{users[0]}/sleep", params={"days": 30}, timeout=10).json()
        stored = pipeline.query(
            "SELECT count(*) FROM raw.sleep WHERE user_id = ? AND day >= ?",
            [users[0], date.today() - timedelta(days=30)],
        )[0][0]
        assert len(nights) == stored and 24 <= stored <= 31  # a few nights are planted as not worn
        assert [n["date"] for n in nights] == sorted((n["date"] for n in nights), reverse=True)
        night = nights[0]
        assert set(night) == {
            "date", "sleep_score", "total_sleep_hours", "light_sleep_hours", "deep_sleep_hours",
            "rem_sleep_hours", "hrv_avg", "heart_rate_avg", "breathing_rate_avg", "skin_temperature_avg",
        }  # fmt: skip
        payload = pipeline.query(
            "SELECT payload FROM raw.sleep WHERE user_id = ? AND day = ?", [users[0], night["date"]]
        )[0][0]
        import json

        raw = json.loads(payload)
        assert (
            night["total_sleep_hours"] == (raw["light_sleep"] + raw["deep_sleep"] + raw["rem_sleep"]) / 3600
        )
        assert night["sleep_score"] == raw["sleep_score"]

        other = httpx.get(f"{api}/api/v1/users/{users[1]}/sleep", params={"days": 7}, timeout=10).json()
        assert 1 <= len(other) <= 8 and all(n["date"] >= str(date.today() - timedelta(days=7)) for n in other)

        assert httpx.get(f"{api}/api/v1/users/nobody/sleep", timeout=10).status_code == 404
        bad_days = httpx.get(f"{api}/api/v1/users/{users[0]}/sleep", params={"days": 0}, timeout=10)
        assert bad_days.status_code == 422 and "days" in bad_days.text
        assert httpx.get(f"{api}/api/v1/users/a%7Cb/sleep", timeout=10).status_code == 422
