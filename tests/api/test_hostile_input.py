"""SQL injection, path traversal and huge or odd strings in every path and query parameter: 4xx, never 5xx.

The routes and their parameters come from the app's own OpenAPI document, so a route added later is attacked
too. Each hostile value replaces one parameter at a time (the others keep a valid value), with a served
user's id in the path unless the user id itself is the target.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from tests.support.served import Served

HOSTILE_VALUES: tuple[str, ...] = (
    "' OR '1'='1",
    "1; DROP TABLE marts.daily_metrics; --",
    '" UNION SELECT payload FROM raw.sleep --',
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "\x00",
    "A" * 5000,
    "9" * 400,
    "-1",
    "NaN",
    "inf",
    "-Infinity",
    "1e309",
    "2026-02-30",
    "0000-00-00",
    "<script>alert(1)</script>",
    "😀𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "{{7*7}}",
    "$(id)",
    " ",
)
VALID_SAMPLES: dict[str, str] = {
    "date": "2026-02-20",
    "metric": "hrv_rmssd",
    "metric_name": "hrv_rmssd",
    "value": "50",
    "name": "sleep_hrv_correlation",
    "pattern_name": "sleep_hrv_correlation",
    "days": "7",
}


def _operations(api: httpx.Client) -> list[tuple[str, str, list[str], list[str]]]:
    """(method, path template, path parameter names, query parameter names) of every /api/v1 operation."""
    document = api.get("/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            parameters: list[dict[str, Any]] = operation.get("parameters", [])
            found.append(
                (
                    method.upper(),
                    path,
                    [p["name"] for p in parameters if p["in"] == "path"],
                    [p["name"] for p in parameters if p["in"] == "query"],
                )
            )
    return found


def test_hostile_values_in_every_parameter_get_4xx_never_5xx(served: Served, api: httpx.Client) -> None:
    operations = _operations(api)
    assert len(operations) >= 1
    exercise_id = served.snapshot_query("SELECT min(exercise_id) FROM marts.exercises")[0][0]
    valid = VALID_SAMPLES | {"user_id": served.users[0], "exercise_id": exercise_id}
    checked, server_errors = 0, []
    for method, template, path_names, query_names in operations:
        for target in path_names + query_names:
            for hostile in HOSTILE_VALUES:
                path = template
                for name in path_names:
                    value = hostile if name == target else valid.get(name, "x")
                    path = path.replace("{" + name + "}", quote(value, safe=""))
                params = {name: (hostile if name == target else valid.get(name, "7")) for name in query_names}
                response = api.request(method, path, params=params)
                checked += 1
                if response.status_code >= 500:
                    where = f"{method} {template} {target}={hostile[:40]!r}"
                    server_errors.append(f"{where}: {response.status_code} {response.text[:200]}")
                else:
                    assert response.headers["content-type"].startswith(("application/json", "text/csv")), path
    assert server_errors == [], server_errors[:10]
    assert checked >= len(HOSTILE_VALUES)
    # Nothing was changed by what was sent: the served marts still hold every user's rows.
    counts = served.snapshot_query("SELECT count(DISTINCT user_id) FROM marts.daily_metrics")
    assert counts[0][0] == len(served.users)
