"""Reads the dashboard tests compare against: the page's own JSON, and independent reads of the same facts
from the warehouse's raw payloads (plain SQL and JSON, not the read layer's queries)."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import date, timedelta
from typing import Any

import httpx

from polar_api.dashboard.session import COOKIE_NAME
from tests.support.served import Served


def cookie(key: str) -> dict[str, str]:
    """Request headers carrying ``key`` as the dashboard's session cookie."""
    return {"Cookie": f"{COOKIE_NAME}={key}"}


def page_json(api: httpx.Client, key: str, page: str, **params: str) -> dict[str, Any]:
    response = api.get(f"/dashboard/data/{page}", params=params, headers=cookie(key))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def chart(body: dict[str, Any], chart_id: str) -> dict[str, Any]:
    return next(c for c in body["charts"] if c["id"] == chart_id)


def trace(body: dict[str, Any], chart_id: str, name: str) -> dict[str, Any]:
    return next(t for t in chart(body, chart_id)["traces"] if t["name"] == name)


def present(values: list[Any] | None) -> int:
    """Values that are not missing (for a heatmap, cells over all rows)."""
    if not values:
        return 0
    if isinstance(values[0], list):
        return sum(present(row) for row in values)
    return sum(1 for value in values if value is not None)


def days(since: date, until: date) -> list[date]:
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


def raw_payloads(
    served: Served, table: str, user: str, since: date, until: date
) -> dict[date, dict[str, Any]]:
    """The raw table's payloads of ``user`` dated ``since``…``until``, parsed, by day."""
    rows = served.warehouse_query(
        f"SELECT day, payload FROM raw.{table} WHERE user_id = ? AND day BETWEEN ? AND ?",
        [user, since, until],
    )
    return {day: json.loads(payload) for day, payload in rows}


def nightly_ln_rmssd(served: Served, user: str, since: date, until: date) -> dict[date, float]:
    """ln of Polar's nightly RMSSD, from the Nightly Recharge payloads (0 is Polar's "no signal")."""
    found = raw_payloads(served, "nightly_recharge", user, since, until)
    return {
        day: math.log(payload["heart_rate_variability_avg"])
        for day, payload in found.items()
        if payload.get("heart_rate_variability_avg")
    }


def nightly_deep_sleep_hours(served: Served, user: str, since: date, until: date) -> dict[date, float]:
    found = raw_payloads(served, "sleep", user, since, until)
    return {day: payload["deep_sleep"] / 3600.0 for day, payload in found.items()}


def workouts_by_sport(served: Served, user: str, since: date, until: date) -> Counter[str]:
    """Workouts per sport in ``marts.exercises`` of the snapshot (one row per workout, AccessLink and
    export copies of one session counted once)."""
    rows = served.snapshot_query(
        "SELECT sport, count(*) FROM marts.exercises WHERE user_id = ? AND day BETWEEN ? AND ? "
        "GROUP BY sport",
        [user, since, until],
    )
    return Counter({str(sport).replace("_", " ").capitalize(): int(n) for sport, n in rows})
