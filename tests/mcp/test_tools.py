"""Every MCP tool, over streamable HTTP and over stdio with the SDK's own client, against its REST route.

The tools answer from the REST routes' read functions, so each number must equal the route's answer for
the same user and window; two lists are also checked against the raw AccessLink payloads in the warehouse,
which the tools never read. Each answer must match the output schema ``tools/list`` published.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from polar_pipeline.warehouse.snapshot import read_pointer
from tests.mcp.support import McpSession, error_text
from tests.support.served import Served

V1 = "/api/v1/users"
EXPECTED_TOOLS = {
    # polar-flow-server's names
    "get_health_insights", "get_sleep", "get_recovery", "get_activity", "get_exercises", "get_biosensing",
    "get_baselines", "get_patterns", "trigger_sync", "get_sync_status",
    # ours
    "get_hrv_status", "get_training_load", "get_trends", "get_correlations", "get_anomalies",
    "get_illness_watch", "query_sql",
}  # fmt: skip
WRITING_TOOLS = {"trigger_sync"}
"""Called in test_writes.py, on a copy of the served home: a sync request must not land in the shared one."""
REQUIRED_ARGUMENTS: dict[str, dict[str, Any]] = {
    "get_biosensing": {"metric": "heart_rate"},
    "query_sql": {"sql": "SELECT 1 AS one"},
}


def _rest(api: httpx.Client, served: Served, user: str, path: str, **params: Any) -> Any:
    response = api.get(f"{V1}/{user}/{path}", params=params, headers=served.headers(user))
    assert response.status_code == 200, (path, response.text)
    return response.json()


def _without_generated_at(insights: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in insights.items() if key != "generated_at"}


def _validators(session: McpSession) -> dict[str, Draft202012Validator]:
    validators = {}
    for tool in session.tools():
        assert tool.output_schema is not None, tool.name
        validators[tool.name] = Draft202012Validator(tool.output_schema)
    return validators


def test_tools_list_names_every_tool_with_valid_schemas_and_a_description_for_a_model(
    own: McpSession,
) -> None:
    tools = own.tools()
    assert {tool.name for tool in tools} == EXPECTED_TOOLS
    for tool in tools:
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.output_schema is not None, f"{tool.name} has no output schema"
        Draft202012Validator.check_schema(tool.output_schema)
        properties = tool.output_schema["properties"]
        assert {"snapshot_generation", "snapshot_age_seconds", "note"} <= set(properties), tool.name
        assert tool.description and len(tool.description) > 150, tool.name
        if tool.name != "query_sql":
            assert "user_id" in tool.input_schema["properties"], tool.name
            assert "latest_data_day" in properties, tool.name
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is (tool.name not in WRITING_TOOLS), tool.name
    days = next(tool for tool in tools if tool.name == "get_sleep").input_schema["properties"]["days"]
    assert (days["minimum"], days["maximum"], days["default"]) == (1, 365, 30)


def test_every_tool_answers_with_its_rest_routes_numbers(
    own: McpSession, served: Served, api: httpx.Client
) -> None:
    user = served.users[0]
    validators = _validators(own)
    called: set[str] = set()

    def answer(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = own.answer(tool, arguments)
        validators[tool].validate(result)
        assert result["user_id"] == user
        called.add(tool)
        return result

    def rest(path: str, **params: Any) -> Any:
        return _rest(api, served, user, path, **params)

    sleep = answer("get_sleep", {"days": 14})
    assert sleep["records"] == rest("sleep", days=14) and sleep["count"] == len(sleep["records"]) > 0
    assert sleep["sleep_debt"] == rest("sleep-debt", days=14) != []
    recovery = answer("get_recovery", {"days": 14})
    assert recovery["nightly_recharge"] == rest("recharge", days=14) != []
    assert recovery["cardio_load"] == rest("cardio-load", days=14) != []
    assert recovery["recovery_score"] == rest("recovery", days=14) != []
    assert answer("get_activity", {"days": 10})["records"] == rest("activity", days=10) != []
    workouts = answer("get_exercises", {"days": 30})
    assert workouts["exercises"] == rest("exercises", days=30) != [] and workouts["exercise"] is None
    first_id = workouts["exercises"][0]["id"]
    one = answer("get_exercises", {"exercise_id": first_id})
    assert one["exercise"] == rest(f"exercises/{first_id}") and one["exercises"] == []
    heart = answer("get_biosensing", {"metric": "heart_rate", "days": 14})
    assert heart["collected"] and heart["records"] == rest("heart-rate", days=14) != []
    for metric in ("spo2", "ecg", "body_temperature", "skin_temperature", "alertness", "bedtime"):
        missing = answer("get_biosensing", {"metric": metric})
        assert not missing["collected"] and missing["records"] == [] and "not collected" in missing["note"]

    insights = answer("get_health_insights", {})
    assert _without_generated_at(insights["insights"]) == _without_generated_at(rest("insights"))
    assert insights["insights"]["baselines"] and insights["latest_data_day"] == insights["insights"]["day"]
    assert answer("get_baselines", {})["baselines"] == rest("baselines") != []
    patterns = answer("get_patterns", {})
    assert patterns["patterns"] == rest("patterns") != []
    assert patterns["anomalies"] == rest("anomalies")
    assert answer("get_hrv_status", {"days": 14})["records"] == rest("hrv-status", days=14) != []
    assert answer("get_training_load", {"days": 14})["records"] == rest("training-load", days=14) != []
    assert answer("get_trends", {})["records"] == rest("trends") != []
    assert answer("get_trends", {"days": 2})["records"] == rest("trends", days=2) != []
    assert answer("get_correlations", {})["records"] == rest("correlations") != []
    flagged = answer("get_anomalies", {"days": 60})
    assert flagged["anomalies"] == rest("anomalies", days=60)
    in_window = served.snapshot_query(
        "SELECT count(*) FROM marts.anomalies WHERE user_id = ? AND day >= DATE '2026-03-01' - 60", [user]
    )[0][0]
    assert flagged["anomalies"]["anomaly_count"] == in_window > 0
    assert answer("get_anomalies", {})["anomalies"] == rest("anomalies")
    assert answer("get_illness_watch", {"days": 14})["records"] == rest("illness-watch", days=14) != []
    assert answer("get_sync_status", {})["status"] == rest("sync/status")
    rows = answer("query_sql", {"sql": "SELECT count(*) AS nights FROM marts.daily_metrics"})
    assert rows["rows"] == [[served.snapshot_query(
        "SELECT count(*) FROM marts.daily_metrics WHERE user_id = ?", [user]
    )[0][0]]]  # fmt: skip

    assert called == EXPECTED_TOOLS - WRITING_TOOLS


def test_answers_say_which_snapshot_and_how_current_their_data_is(own: McpSession, served: Served) -> None:
    generation = _generation(served)
    newest = served.snapshot_query(
        "SELECT max(day) FROM marts.daily_metrics WHERE user_id = ?", [served.users[0]]
    )[0][0]
    sleep = own.answer("get_sleep", {"days": 7})
    assert sleep["snapshot_generation"] == generation
    assert 0 <= sleep["snapshot_age_seconds"] < 24 * 3600
    assert sleep["user_today"] == "2026-03-01" and sleep["to_date"] == "2026-03-01"
    assert sleep["from_date"] == "2026-02-22"
    assert sleep["latest_data_day"] == max(night["date"] for night in sleep["records"])
    assert sleep["newest_synced_day"] == newest.isoformat()
    assert sleep["note"] is None  # the served data runs to the test calendar's today


def _generation(served: Served) -> int:
    info = read_pointer(served.settings.snapshots_dir)
    assert info is not None
    return info.generation


def test_sleep_and_activity_equal_the_raw_accesslink_payloads(own: McpSession, served: Served) -> None:
    """An independent source: the payloads as AccessLink sent them, which no tool reads."""
    user = served.users[0]
    payloads = {
        table: {
            day: json.loads(payload)
            for day, payload in served.warehouse_query(
                f"SELECT day, payload FROM raw.{table} WHERE user_id = ?", [user]
            )
        }
        for table in ("sleep", "activity")
    }
    nights = own.answer("get_sleep", {"days": 28})["records"]
    assert len(nights) >= 20
    for night in nights:
        sent = payloads["sleep"][date.fromisoformat(night["date"])]
        assert night["sleep_score"] == sent["sleep_score"]
        stages = sent["light_sleep"] + sent["deep_sleep"] + sent["rem_sleep"]
        assert night["total_sleep_hours"] == pytest.approx(stages / 3600)
        assert night["rem_sleep_hours"] == pytest.approx(sent["rem_sleep"] / 3600)
    days = own.answer("get_activity", {"days": 28})["records"]
    assert len(days) >= 20
    for day in days:
        assert day["steps"] == payloads["activity"][date.fromisoformat(day["date"])]["steps"]


def test_a_user_id_naming_another_user_is_refused_by_every_tool(own: McpSession, served: Served) -> None:
    owner, other = served.users[0], served.users[1]
    for tool in sorted(EXPECTED_TOOLS):
        result = own.call(tool, REQUIRED_ARGUMENTS.get(tool, {}) | {"user_id": other})
        text = error_text(result)
        assert result.is_error, (tool, result.structured_content)
        assert "refused" in text and f"reads only user {owner}" in text and other in text, (tool, text)
        # Naming oneself is fine.
        if tool not in WRITING_TOOLS:
            assert not own.call(tool, REQUIRED_ARGUMENTS.get(tool, {}) | {"user_id": owner}).is_error, tool


def test_an_admin_key_must_name_the_user_and_then_reads_anyone(
    admin: McpSession, served: Served, api: httpx.Client
) -> None:
    for tool in sorted(EXPECTED_TOOLS - {"query_sql"}):
        result = admin.call(tool, REQUIRED_ARGUMENTS.get(tool, {}))
        assert result.is_error and "pass user_id" in error_text(result), (tool, error_text(result))
    other = served.users[1]
    sleep = admin.answer("get_sleep", {"days": 5, "user_id": other})
    assert sleep["user_id"] == other and sleep["records"] == _rest(api, served, other, "sleep", days=5) != []
    everyone = admin.answer(
        "query_sql", {"sql": "SELECT DISTINCT user_id FROM marts.daily_metrics ORDER BY 1"}
    )
    assert everyone["rows"] == [[user] for user in sorted(served.users)] and everyone["user_id"] is None
    one = admin.answer(
        "query_sql", {"sql": "SELECT DISTINCT user_id FROM marts.daily_metrics", "user_id": other}
    )
    assert one["rows"] == [[other]]


def test_resources_document_the_public_tables(own: McpSession) -> None:
    resources = {str(resource.uri): resource for resource in own.resources()}
    assert "polar://tables" in resources
    tables = [uri for uri in resources if uri.startswith("polar://tables/")]
    assert "polar://tables/marts.daily_metrics" in tables and len(tables) >= 10
    index = own.read_resource("polar://tables")
    for uri in tables:
        assert uri.removeprefix("polar://tables/") in index, uri
    daily = own.read_resource("polar://tables/marts.daily_metrics")
    for column in ("sleep_score", "hrv_rmssd_ms", "steps"):
        assert column in daily


def test_prompts_ask_for_tools_that_exist(own: McpSession, served: Served) -> None:
    prompts = {prompt.name: prompt for prompt in own.prompts()}
    assert {"weekly_review", "ready_to_train"} <= set(prompts)
    for name in ("weekly_review", "ready_to_train"):
        assert prompts[name].description
        for arguments in (None, {"user_id": served.users[0]}):
            result = own.prompt(name, arguments)
            text = " ".join(getattr(message.content, "text", "") for message in result.messages)
            named = {tool for tool in EXPECTED_TOOLS if tool in text}
            assert {"get_health_insights", "get_sleep", "get_recovery"} <= named, (name, text)
            if arguments:
                assert served.users[0] in text
