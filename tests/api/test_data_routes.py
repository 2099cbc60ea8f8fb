"""The data routes (sleep, recharge, activity, exercises, heart rate, cardio load, exports), served data.

Every value is checked against the payload AccessLink sent, parsed here in Python from ``raw.*`` in the
warehouse: an oracle independent of the SQL that built the marts the API reads. The API's "today" is
POLAR_TODAY (``TEST_TODAY``), so each window is exactly the dates today - days ... today.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from polar_api.read.activity import activity_days
from polar_api.read.cardio_load import cardio_load_days
from polar_api.read.exercises import exercises
from polar_api.read.heart_rate import heart_rate_days
from polar_api.read.recharge import recharge_nights
from polar_api.read.sleep import sleep_nights
from polar_api.read.users import user_exists
from polar_pipeline.warehouse.snapshot import SnapshotReader
from tests.conftest import TEST_TODAY
from tests.support.served import Served

V1 = "/api/v1/users"
LIST_ROUTES = ("sleep", "recharge", "activity", "exercises", "heart-rate", "cardio-load", "export/summary")
CSV_ROUTES = ("sleep", "activity", "recharge", "cardio-load")
RAW_TABLE = {
    "sleep": "sleep",
    "recharge": "nightly_recharge",
    "activity": "activity",
    "heart-rate": "continuous_heart_rate",
    "cardio-load": "cardio_load",
}
DURATION = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def _seconds(iso_duration: str) -> float:
    """ISO-8601 duration (days to seconds) -> seconds; enough for what the simulator sends."""
    match = DURATION.fullmatch(iso_duration)
    assert match, iso_duration
    d, h, m, s = (float(part) if part else 0.0 for part in match.groups())
    return d * 86400 + h * 3600 + m * 60 + s


def _absent(value: Any, *sentinels: float) -> Any:
    """Polar's "no value" numbers as None, as the API must show them (docs/accesslink.md §7)."""
    return None if value is None or value in sentinels else value


def _window(days: int) -> tuple[date, date]:
    return TEST_TODAY - timedelta(days=days), TEST_TODAY


@pytest.fixture(scope="module")
def raw(served: Served) -> dict[str, dict[str, dict[Any, dict[str, Any]]]]:
    """Every payload of the served warehouse: table -> user -> natural key (day or exercise id) -> payload."""
    quarantined = served.warehouse_query("SELECT stream, count(*) FROM raw.quarantine GROUP BY stream")
    assert quarantined == [], f"raw == API needs a clean warehouse: {quarantined}"
    payloads: dict[str, dict[str, dict[Any, dict[str, Any]]]] = {}
    for table in (*RAW_TABLE.values(), "exercises"):
        key = "exercise_id" if table == "exercises" else "day"
        rows = served.warehouse_query(f"SELECT user_id, {key}, day, payload FROM raw.{table}")
        by_user: dict[str, dict[Any, dict[str, Any]]] = {user: {} for user in served.users}
        for user, natural_key, day, payload in rows:
            by_user[user][natural_key] = json.loads(payload) | {"_day": day}
        payloads[table] = by_user
    return payloads


def _get(api: httpx.Client, path: str, **params: Any) -> Any:
    response = api.get(f"{V1}/{path}", params=params)
    assert response.status_code == 200, (path, params, response.text)
    return response.json()


def _dates(items: list[dict[str, Any]]) -> list[str]:
    return [item["date"] for item in items]


def _span(raw: dict[str, Any], user: str) -> tuple[date, date]:
    """The user's first and last day with data: what the marts hold a row for (a day Polar marks as having
    no cardio load, which it sends for days before a user's first record too, does not count)."""
    days = [
        sent["_day"]
        for table in (*RAW_TABLE.values(), "exercises")
        for sent in raw[table][user].values()
        if sent.get("cardio_load_status") != "LOAD_STATUS_NOT_AVAILABLE"
    ]
    return min(days), max(days)


def _expected_dates(raw: dict[str, Any], route: str, user: str, days: int) -> list[str]:
    """The dates a list route must return: the stream's payloads in the window and in the user's span."""
    first, last = _window(days)
    span_first, span_last = _span(raw, user)
    dated = raw[RAW_TABLE[route]][user]
    return sorted(
        (str(day) for day in dated if max(first, span_first) <= day <= min(last, span_last)), reverse=True
    )


# --- windows --------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", list(RAW_TABLE))
def test_list_routes_return_exactly_the_local_dates_of_the_window_newest_first(
    route: str, served: Served, api: httpx.Client, raw: dict[str, Any]
) -> None:
    seen = 0
    for user in served.users:
        for days in (1, 7, 365):
            items = _get(api, f"{user}/{route}", days=days)
            assert _dates(items) == _expected_dates(raw, route, user, days), (route, user, days)
            seen += len(items)
    assert seen > 3 * 56, route  # the 365-day windows alone hold ~56 days per user


def test_default_windows_are_upstreams(served: Served, api: httpx.Client) -> None:
    user = served.users[0]
    assert _get(api, f"{user}/sleep") == _get(api, f"{user}/sleep", days=7)
    for route in ("recharge", "activity", "exercises", "heart-rate", "cardio-load"):
        assert _get(api, f"{user}/{route}") == _get(api, f"{user}/{route}", days=30), route


# --- sleep ----------------------------------------------------------------------------------------


def _nonzero(samples: dict[str, int]) -> list[int]:
    return [bpm for bpm in samples.values() if bpm > 0]


def test_sleep_list_values_match_the_payloads(served: Served, api: httpx.Client, raw: dict[str, Any]) -> None:
    for user in served.users:
        for night in _get(api, f"{user}/sleep", days=365):
            sent = raw["sleep"][user][date.fromisoformat(night["date"])]
            recharge = raw["nightly_recharge"][user].get(date.fromisoformat(night["date"]), {})
            stages = sent["light_sleep"] + sent["deep_sleep"] + sent["rem_sleep"]
            assert night["sleep_score"] == sent["sleep_score"]
            assert night["total_sleep_hours"] == pytest.approx(stages / 3600)
            assert night["deep_sleep_hours"] == pytest.approx(sent["deep_sleep"] / 3600)
            bpm = _nonzero(sent["heart_rate_samples"])
            assert night["heart_rate_avg"] == pytest.approx(sum(bpm) / len(bpm))
            assert night["hrv_avg"] == _absent(recharge.get("heart_rate_variability_avg"), 0)


def test_sleep_detail_matches_the_payload_field_by_field(
    served: Served, api: httpx.Client, raw: dict[str, Any]
) -> None:
    user = served.users[0]
    nights = raw["sleep"][user]
    zeros_seen = ratings_absent = 0
    for day, sent in nights.items():
        night = _get(api, f"{user}/sleep/{day}")
        recharge = raw["nightly_recharge"][user].get(day, {})
        for field in ("sleep_start_time", "sleep_end_time"):
            shown, written = datetime.fromisoformat(night[field]), datetime.fromisoformat(sent[field])
            assert shown == written and shown.utcoffset() == written.utcoffset(), (day, field)
        bpm = _nonzero(sent["heart_rate_samples"])
        expected = {
            "date": str(day),
            "sleep_score": sent["sleep_score"],
            "sleep_rating": _absent(sent["sleep_rating"], 0),
            "total_sleep_hours": (sent["light_sleep"] + sent["deep_sleep"] + sent["rem_sleep"]) / 3600,
            "light_sleep_hours": sent["light_sleep"] / 3600,
            "deep_sleep_hours": sent["deep_sleep"] / 3600,
            "rem_sleep_hours": sent["rem_sleep"] / 3600,
            "interruptions_hours": sent["total_interruption_duration"] / 3600,
            "hrv_avg": _absent(recharge.get("heart_rate_variability_avg"), 0),
            "heart_rate_avg": sum(bpm) / len(bpm),
            "heart_rate_min": min(bpm),
            "heart_rate_max": max(bpm),
            "breathing_rate_avg": _absent(recharge.get("breathing_rate_avg"), 0),
            "device_id": sent["device_id"],
            "continuity": _absent(sent["continuity"], 0),
            "continuity_class": _absent(sent["continuity_class"], 0),
            "sleep_cycles": sent["sleep_cycles"],
            "unrecognized_sleep_seconds": sent["unrecognized_sleep_stage"],
            "short_interruption_seconds": sent["short_interruption_duration"],
            "long_interruption_seconds": sent["long_interruption_duration"],
            "sleep_charge": _absent(sent["sleep_charge"], -1),
            "sleep_goal_hours": sent["sleep_goal"] / 3600,
            "group_duration_score": sent["group_duration_score"],
            "group_solidity_score": sent["group_solidity_score"],
            "group_regeneration_score": sent["group_regeneration_score"],
        }
        shown = {field: night[field] for field in expected}
        assert shown == pytest.approx(expected), day
        # The series keep the payload's order (HH:MM keys wrap past midnight); a 0 bpm is "no signal".
        assert list(night["hypnogram"].items()) == list(sent["hypnogram"].items()), day
        assert set(night["hypnogram"].values()) <= {0, 1, 2, 3, 4, 5}
        hr = [(clock, bpm or None) for clock, bpm in sent["heart_rate_samples"].items()]
        assert list(night["heart_rate_samples"].items()) == hr, day
        zeros_seen += sum(bpm is None for _, bpm in hr)
        ratings_absent += night["sleep_rating"] is None
    assert len(nights) > 40 and zeros_seen > 0 and ratings_absent > 0  # sentinels were exercised


def test_sleep_detail_says_404_for_a_day_without_a_night_and_422_for_a_bad_date(
    served: Served, api: httpx.Client, raw: dict[str, Any]
) -> None:
    user = served.users[0]
    first_night = min(raw["sleep"][user])
    before = first_night - timedelta(days=1)
    missing = api.get(f"{V1}/{user}/sleep/{before}")
    assert missing.status_code == 404 and missing.json() == {
        "detail": f"no sleep for user {user} on {before}"
    }
    unknown = api.get(f"{V1}/nobody/sleep/{first_night}")
    assert unknown.status_code == 404 and "nobody" in unknown.json()["detail"]
    for bad in ("2026-02-30", "2026-2-1", "0", "20260228", "2026-02-28T00:00:00", "yesterday"):
        for route in ("sleep", "activity"):
            response = api.get(f"{V1}/{user}/{route}/{bad}")
            assert response.status_code == 422, (route, bad, response.text)
            assert "date" in response.text.lower(), response.text


# --- recharge -------------------------------------------------------------------------------------


def test_recharge_values_match_the_payloads(served: Served, api: httpx.Client, raw: dict[str, Any]) -> None:
    compared = 0
    for user in served.users:
        for night in _get(api, f"{user}/recharge", days=365):
            sent = raw["nightly_recharge"][user][date.fromisoformat(night["date"])]
            assert night == {
                "date": night["date"],
                "hrv_avg": _absent(sent["heart_rate_variability_avg"], 0),
                "ans_charge": sent["ans_charge"],
                "ans_charge_status": sent["ans_charge_status"],
                "breathing_rate_avg": _absent(sent["breathing_rate_avg"], 0),
                "heart_rate_avg": _absent(sent["heart_rate_avg"], 0),
                "nightly_recharge_status": sent["nightly_recharge_status"],
                "beat_to_beat_avg": _absent(sent["beat_to_beat_avg"], 0),
            }
            compared += 1
    assert compared > 100


# --- activity -------------------------------------------------------------------------------------


def test_activity_list_and_detail_match_the_payloads(
    served: Served, api: httpx.Client, raw: dict[str, Any]
) -> None:
    for user in served.users:
        for item in _get(api, f"{user}/activity", days=365):
            sent = raw["activity"][user][date.fromisoformat(item["date"])]
            assert item == {
                "date": item["date"],
                "steps": sent["steps"],
                "calories_active": sent["active_calories"],
                "calories_total": sent["calories"],
                "distance_km": round(sent["distance_from_steps"] / 1000, 2),
                "active_minutes": round(_seconds(sent["active_duration"]) / 60, 1),
                "activity_score": sent["daily_activity"],
            }
    user = served.users[1]
    for day, sent in list(raw["activity"][user].items())[:10]:
        assert _get(api, f"{user}/activity/{day}") == {
            "date": str(day),
            "steps": sent["steps"],
            "calories_active": sent["active_calories"],
            "calories_total": sent["calories"],
            "distance_meters": sent["distance_from_steps"],
            "active_time_seconds": _seconds(sent["active_duration"]),
            "inactive_time_seconds": _seconds(sent["inactive_duration"]),
            "activity_score": sent["daily_activity"],
            "inactivity_alerts": sent["inactivity_alert_count"],
        }
    missing = api.get(f"{V1}/{user}/activity/2025-06-01")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"no activity for user {user} on 2025-06-01"}


# --- exercises ------------------------------------------------------------------------------------


def _start(sent: dict[str, Any]) -> datetime:
    offset = timezone(timedelta(minutes=sent["start_time_utc_offset"]))
    return datetime.fromisoformat(sent["start_time"]).replace(tzinfo=offset)


def _session_load(sent: dict[str, Any]) -> float | None:
    cardio = sent.get("training_load_pro", {}).get("cardio-load")
    return _absent(cardio, -1) if cardio is not None else sent.get("training_load")


LAST_SYNC_FIRST_DAY = TEST_TODAY - timedelta(days=27)
"""The first day the served warehouse's last 28-day sync materialised."""


def _workouts(raw: dict[str, Any], user: str, days: int) -> tuple[set[str], set[str]]:
    """(must, may): the user's workouts that started in the window, (must) on days the last sync built.

    AccessLink serves workouts uploaded in the last 30 days, so the 28-day sync also fetches a workout or two
    from before its first day. Raw keeps them, but marts.exercises gets them only once a run covers their day
    (pipeline behaviour, not the API's): the API must list every workout of the days built and nothing that
    is not in raw.
    """
    first, last = _window(days)
    may = {eid for eid, sent in raw["exercises"][user].items() if first <= _start(sent).date() <= last}
    must = {eid for eid in may if _start(raw["exercises"][user][eid]).date() >= LAST_SYNC_FIRST_DAY}
    return must, may


def test_exercise_list_matches_the_payloads_newest_first(
    served: Served, api: httpx.Client, raw: dict[str, Any]
) -> None:
    listed = 0
    for user in served.users:
        sent_by_id = raw["exercises"][user]
        for days in (1, 7, 365):
            items = _get(api, f"{user}/exercises", days=days)
            must, may = _workouts(raw, user, days)
            assert must <= {item["id"] for item in items} <= may, (user, days)
        starts = [datetime.fromisoformat(item["start_time"]) for item in items]
        assert starts == sorted(starts, reverse=True)
        for item in items:
            sent = sent_by_id[item["id"]]
            assert item == pytest.approx({
                "id": sent["id"],
                "polar_exercise_id": sent["id"],
                "start_time": item["start_time"],
                "sport": sent["sport"],
                "duration_minutes": round(_seconds(sent["duration"]) / 60, 1),
                "distance_km": round(sent["distance"] / 1000, 2) if "distance" in sent else None,
                "calories": sent["calories"],
                "average_heart_rate": _absent(sent["heart_rate"]["average"], 0),
                "max_heart_rate": _absent(sent["heart_rate"]["maximum"], 0),
                "training_load": _session_load(sent),
            })  # fmt: skip
            assert datetime.fromisoformat(item["start_time"]) == _start(sent)
            assert datetime.fromisoformat(item["start_time"]).utcoffset() == _start(sent).utcoffset()
            listed += 1
    assert listed >= 20


def _zones(sent: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "index": zone["index"],
            "lower_limit_bpm": zone["lower_limit"],
            "upper_limit_bpm": zone["upper_limit"],
            "in_zone_seconds": _seconds(zone["in_zone"]),
        }
        for zone in sent["heart_rate_zones"]
    ]


def _series(sent: dict[str, Any]) -> list[dict[str, Any]]:
    """The payload's series, lowest type code first, values as numbers (an empty item is a gap)."""
    return [
        {
            "sample_type": str(series["sample_type"]),
            "recording_rate": series["recording_rate"],
            "values": [float(v) if v not in ("", "null") else None for v in series["data"].split(",")],
        }
        for series in sorted(sent["samples"], key=lambda series: int(series["sample_type"]))
    ]


def _climb(sent: dict[str, Any]) -> tuple[float | None, float | None]:
    """Ascent and descent from the altitude series (type 3) with a 1 m dead band; (None, None) without one."""
    altitude = next((s for s in sent.get("samples", []) if int(s["sample_type"]) == 3), None)
    if altitude is None:
        return None, None
    readings = [float(v) for v in altitude["data"].split(",") if v not in ("", "null")]
    if not readings:
        return None, None
    level, ascent, descent = readings[0], 0.0, 0.0
    for reading in readings[1:]:
        if abs(reading - level) >= 1:
            ascent, descent = ascent + max(reading - level, 0), descent + max(level - reading, 0)
            level = reading
    return ascent, descent


def test_exercise_detail_and_samples_match_the_payload(
    served: Served, api: httpx.Client, raw: dict[str, Any]
) -> None:
    user = served.users[0]
    built, _ = _workouts(raw, user, 365)
    climbs = routes = 0
    for index, exercise_id in enumerate(sorted(built)):
        sent = raw["exercises"][user][exercise_id]
        detail = _get(api, f"{user}/exercises/{exercise_id}")
        pro = sent.get("training_load_pro", {})
        expected = {
            "id": exercise_id,
            "polar_exercise_id": exercise_id,
            "sport": sent["sport"],
            "detailed_sport_info": sent.get("detailed_sport_info"),
            "device_id": sent.get("device_id"),
            "duration_seconds": _seconds(sent["duration"]),
            "distance_meters": sent.get("distance"),
            "calories": sent["calories"],
            "average_heart_rate": _absent(sent["heart_rate"]["average"], 0),
            "max_heart_rate": _absent(sent["heart_rate"]["maximum"], 0),
            "training_load": _session_load(sent),
            "cardio_load": _absent(pro.get("cardio-load"), -1),
            "muscle_load": _absent(pro.get("muscle-load"), -1),
            "perceived_load": _absent(pro.get("perceived-load"), 0),
            "ascent_meters": _climb(sent)[0],
            "descent_meters": _climb(sent)[1],
            "running_index": sent.get("running_index"),
            "has_samples": bool(sent.get("samples")),
            "has_route": sent.get("has_route"),
            "has_route_data": bool(sent.get("route")),
        }
        times_and_zones = {"start_time", "start_time_utc", "heart_rate_zones"}
        assert set(detail) == set(expected) | times_and_zones
        assert {field: detail[field] for field in expected} == pytest.approx(expected), exercise_id
        assert detail["heart_rate_zones"] == _zones(sent), exercise_id
        assert datetime.fromisoformat(detail["start_time"]) == _start(sent)
        assert datetime.fromisoformat(detail["start_time_utc"]) == _start(sent)
        climbs += detail["ascent_meters"] is not None
        routes += detail["has_route"] is True
        if index < 6:  # a few workouts' series are enough: each holds thousands of values
            samples = _get(api, f"{user}/exercises/{exercise_id}/samples")
            assert samples["exercise_id"] == exercise_id and samples["sport"] == sent["sport"]
            assert samples["samples"] == _series(sent), exercise_id
    assert len(built) >= 10 and climbs > 0 and routes > 0  # not vacuous


def test_exercise_routes_say_404_for_an_unknown_or_another_users_workout(
    served: Served, api: httpx.Client, raw: dict[str, Any]
) -> None:
    user, other = served.users[0], served.users[1]
    others_workout = next(iter(raw["exercises"][other]))
    assert others_workout not in raw["exercises"][user]
    for path in ("", "/samples"):
        for exercise_id in ("zzzzzzzz", others_workout):
            response = api.get(f"{V1}/{user}/exercises/{exercise_id}{path}")
            assert response.status_code == 404, (path, exercise_id)
            assert response.json() == {"detail": f"no exercise {exercise_id} for user {user}"}
        assert api.get(f"{V1}/nobody/exercises/{others_workout}{path}").status_code == 404


@pytest.mark.parametrize("exercise_id", ["a.b", "a%20b", "x" * 65, "%2E%2E", "a;b", "%C3%A9t%C3%A9"])
def test_odd_exercise_ids_are_422(exercise_id: str, served: Served, api: httpx.Client) -> None:
    for path in ("", "/samples"):
        response = api.get(f"{V1}/{served.users[0]}/exercises/{exercise_id}{path}")
        assert response.status_code == 422, (exercise_id, path, response.status_code)
        assert "pattern" in response.text


# --- heart rate and cardio load -------------------------------------------------------------------


def test_heart_rate_days_match_the_payloads(served: Served, api: httpx.Client, raw: dict[str, Any]) -> None:
    compared = 0
    for user in served.users:
        for item in _get(api, f"{user}/heart-rate", days=365):
            sent = raw["continuous_heart_rate"][user][date.fromisoformat(item["date"])]
            bpm = [sample["heart_rate"] for sample in sent["heart_rate_samples"] if sample["heart_rate"] > 0]
            assert item == pytest.approx({
                "date": item["date"],
                "hr_min": min(bpm) if bpm else None,
                "hr_avg": sum(bpm) / len(bpm) if bpm else None,
                "hr_max": max(bpm) if bpm else None,
                "sample_count": len(bpm),
            })  # fmt: skip
            compared += 1
    assert compared > 100


def test_cardio_load_days_match_the_payloads(served: Served, api: httpx.Client, raw: dict[str, Any]) -> None:
    statuses = set()
    for user in served.users:
        for item in _get(api, f"{user}/cardio-load", days=365):
            sent = raw["cardio_load"][user][date.fromisoformat(item["date"])]
            available = sent["cardio_load_status"] != "LOAD_STATUS_NOT_AVAILABLE"
            assert item == pytest.approx({
                "date": item["date"],
                "strain": sent["strain"] if available else None,
                "tolerance": _absent(sent["tolerance"], -1),
                "cardio_load": _absent(sent["cardio_load"], -1),
                "cardio_load_ratio": round(sent["cardio_load_ratio"], 2) if available else None,
                "cardio_load_status": sent["cardio_load_status"],
            })  # fmt: skip
            statuses.add(sent["cardio_load_status"])
    assert len(statuses) >= 2, statuses


# --- exports --------------------------------------------------------------------------------------


def test_export_summary_counts_the_payloads_in_the_window(
    served: Served, api: httpx.Client, raw: dict[str, Any]
) -> None:
    for user in served.users:
        for days in (7, 365):
            first, last = _window(days)
            counts = {
                name: len(_expected_dates(raw, route, user, days))
                for name, route in (("sleep", "sleep"), ("activity", "activity"), ("recharge", "recharge"),
                                    ("cardio_load", "cardio-load"), ("heart_rate", "heart-rate"))
            }  # fmt: skip
            summary = _get(api, f"{user}/export/summary", days=days)
            must, may = _workouts(raw, user, days)
            assert len(must) <= summary["record_counts"]["exercises"] <= len(may)
            counts["exercises"] = len(_get(api, f"{user}/exercises", days=days))
            assert summary == {
                "user_id": user,
                "days": days,
                "from_date": str(first),
                "to_date": str(last),
                "record_counts": counts,
                "total_records": sum(counts.values()),
            }
    assert _get(api, f"{served.users[0]}/export/summary")["days"] == 30


def _csv(api: httpx.Client, user: str, route: str, days: int) -> list[list[str]]:
    response = api.get(f"{V1}/{user}/export/{route}.csv", params={"days": days})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    stem = route.replace("-", "_")
    assert response.headers["content-disposition"] == f"attachment; filename={stem}_{days}days.csv"
    return list(csv.reader(io.StringIO(response.text)))


CSV_HEADERS = {
    "sleep": ["date", "sleep_score", "total_hours", "deep_hours", "light_hours", "rem_hours", "hrv_avg",
              "heart_rate_avg", "breathing_rate_avg"],
    "activity": ["date", "steps", "calories_active", "calories_total", "distance_km", "active_minutes"],
    "recharge": ["date", "hrv_avg", "ans_charge", "status", "breathing_rate", "heart_rate_avg"],
    "cardio-load": ["date", "strain", "tolerance", "cardio_load", "load_ratio", "status"],
}  # fmt: skip


@pytest.mark.parametrize("route", CSV_ROUTES)
def test_csv_exports_hold_the_window_oldest_first(
    route: str, served: Served, api: httpx.Client, raw: dict[str, Any]
) -> None:
    user = served.users[0]
    for days in (7, 365):
        rows = _csv(api, user, route, days)
        assert rows[0] == CSV_HEADERS[route]
        assert [row[0] for row in rows[1:]] == sorted(_expected_dates(raw, route, user, days))
        assert all(len(row) == len(rows[0]) for row in rows)


def test_csv_cells_match_the_payloads_with_zero_as_0_and_missing_as_empty(
    served: Served, api: httpx.Client, raw: dict[str, Any]
) -> None:
    zero_charges = empty_cells = 0
    for user in served.users:
        recharge = {row[0]: row for row in _csv(api, user, "recharge", 365)[1:]}
        for day, sent in raw["nightly_recharge"][user].items():
            row = recharge[str(day)]
            assert float(row[1]) == pytest.approx(sent["heart_rate_variability_avg"])
            assert float(row[2]) == pytest.approx(sent["ans_charge"]) and row[3] == str(
                sent["ans_charge_status"]
            )
            if sent["ans_charge"] == 0:
                assert row[2] == "0", row
                zero_charges += 1
        cardio = {row[0]: row for row in _csv(api, user, "cardio-load", 365)[1:]}
        assert sorted(cardio) == sorted(_expected_dates(raw, "cardio-load", user, 365))
        for day_text, row in cardio.items():
            sent = raw["cardio_load"][user][date.fromisoformat(day_text)]
            if sent["tolerance"] == -1:
                assert row[2] == "" and row[3] == "" and row[4] == "", row
                empty_cells += 1
            else:
                assert (
                    float(row[2]) == pytest.approx(sent["tolerance"]) and row[5] == sent["cardio_load_status"]
                )
        sleep = {row[0]: row for row in _csv(api, user, "sleep", 365)[1:]}
        for day, sent in raw["sleep"][user].items():
            stages = sent["light_sleep"] + sent["deep_sleep"] + sent["rem_sleep"]
            assert sleep[str(day)][1:3] == [str(sent["sleep_score"]), str(round(stages / 3600, 2))]
            hrv = raw["nightly_recharge"][user].get(day, {}).get("heart_rate_variability_avg")
            if hrv:
                assert float(sleep[str(day)][6]) == pytest.approx(hrv)
            else:  # no Nightly Recharge that night (or no signal): an empty cell, not a 0
                assert sleep[str(day)][6] == "", sleep[str(day)]
                empty_cells += 1
        activity = {row[0]: row for row in _csv(api, user, "activity", 365)[1:]}
        for day, sent in raw["activity"][user].items():
            assert activity[str(day)][1:4] == [
                str(sent["steps"]),
                str(sent["active_calories"]),
                str(sent["calories"]),
            ]
    assert zero_charges > 0 and empty_cells > 0  # both rules were exercised


# --- errors and schema ----------------------------------------------------------------------------


@pytest.mark.parametrize("route", [*LIST_ROUTES, *(f"export/{name}.csv" for name in CSV_ROUTES)])
def test_every_list_route_validates_days_and_knows_its_users(
    route: str, served: Served, api: httpx.Client
) -> None:
    user = served.users[0]
    for days, allowed in (("0", "greater than or equal to 1"), ("366", "less than or equal to 365"),
                          ("abc", "valid integer"), ("1.5", "valid integer")):  # fmt: skip
        response = api.get(f"{V1}/{user}/{route}", params={"days": days})
        assert response.status_code == 422, (route, days)
        assert allowed in response.text and "days" in response.text, response.text
    unknown = api.get(f"{V1}/nobody/{route}")
    assert unknown.status_code == 404 and unknown.json() == {
        "detail": "no data for user nobody in the serving snapshot"
    }
    assert api.get(f"{V1}/a%7Cb/{route}").status_code == 422


def test_a_known_user_with_nothing_in_range_reads_empty(served: Served) -> None:
    """The read layer gives [] for a window before the user's history, which the routes turn into 200 []."""
    reader = SnapshotReader(served.settings.snapshots_dir)
    try:
        with reader.cursor() as (cursor, _):
            user, first, last = served.users[0], date(2025, 1, 1), date(2025, 1, 31)
            assert user_exists(cursor, user)
            assert sleep_nights(cursor, user, first, last) == []
            for read in (recharge_nights, activity_days, exercises, heart_rate_days, cardio_load_days):
                assert read(cursor, user, first, last) == [], read.__name__
            assert activity_days(cursor, user, first, TEST_TODAY) != []  # the same call does find data
    finally:
        reader.close()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in spec["paths"].items():
        if path.startswith(V1):
            yield path, methods.get("get", {})


def test_openapi_describes_every_data_route(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    paths = dict(_operations(spec))
    users = f"{V1}/{{user_id}}"
    json_routes = [f"{users}/{route}" for route in LIST_ROUTES] + [
        f"{users}/sleep/{{date}}", f"{users}/activity/{{date}}", f"{users}/exercises/{{exercise_id}}",
        f"{users}/exercises/{{exercise_id}}/samples",
    ]  # fmt: skip
    for path in json_routes:
        ok = paths[path]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok.get("$ref") or ok.get("items", {}).get("$ref"), path
    for name in CSV_ROUTES:
        ok = paths[f"{users}/export/{name}.csv"]["responses"]["200"]
        assert list(ok["content"]) == ["text/csv"], name
    detail = spec["components"]["schemas"]["SleepNightDetail"]["properties"]["hypnogram"]["description"]
    assert "1 REM" in detail and "4 deep sleep (N3)" in detail
