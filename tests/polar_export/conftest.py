"""Export files built from the documented shapes and a warehouse with the staging views."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from polar_pipeline.sqlmodels import create_views, load_models
from polar_pipeline.warehouse.schema import ensure_raw_schema

EXPORT_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "polar_export"
REAL_SESSION = EXPORT_FIXTURES / "training-session-indoor-tiny.json"
REAL_SESSION_NAME = "training-session-2022-06-18T18:50:02-7520219187-0b6c2f9e.json"
"""The mid-2026 name style, with ':' in it."""

NEW_SESSION_TEXT = """{"identifier": {"id": "8123456789"},
 "created": "2026-04-05T07:07:21.000", "modified": "2026-04-05T07:07:23.000",
 "startTime": "2025-08-16T17:12:22", "stopTime": "2025-08-16T18:26:37", "name": "Running",
 "durationMillis": 4455001, "distanceMeters": 12034.5, "calories": 910, "hrAvg": 151, "hrMax": 178,
 "timezoneOffsetMinutes": -420, "recoveryTimeMillis": "66000000", "sport": {"id": "1"},
 "product": {"modelName": "Polar Vantage V2"},
 "trainingLoadReport": {"cardioLoad": 140.2, "muscleLoad": -1, "calculationTime": "2025-08-16T17:12:22Z"},
 "exercises": [{
   "identifier": {"id": "8342692202"}, "startTime": "2025-08-16T17:12:22", "durationMillis": 4455001,
   "timezoneOffsetMinutes": -420, "sport": {"id": "1"}, "laps": {}, "runningIndex": 52,
   "statistics": {"statistics": [{"type": "STATISTICS_TYPE_HEART_RATE", "min": 92, "avg": 151, "max": 178}]},
   "zones": [{"type": "ZONE_TYPE_HEART_RATE",
              "zones": [{"lowerLimit": 94, "higherLimit": 113, "inZone": 40007}]}],
   "samples": {"samples": [
     {"type": "HEART_RATE", "intervalMillis": 1000, "values": [93, 95, NaN, 101]},
     {"type": "SPEED", "intervalMillis": 1000, "values": [0.0, "NaN", 9.4, 9.6]}]},
   "routes": {"route": {"startTime": "2025-08-16T17:12:22.000",
     "wayPoints": [{"latitude": 37.77, "longitude": -122.42, "elapsedMillis": 1001}]}}}]}"""

OLD_SESSION: dict[str, Any] = {
    "exportVersion": "1.3",
    "name": "Laufen",
    "startTime": "2017-01-23T18:20:18.000",
    "stopTime": "2017-01-23T19:26:38.000",
    "timeZoneOffset": 60,
    "distance": 6595.0,
    "duration": "PT2753.875S",
    "maximumHeartRate": 164,
    "averageHeartRate": 138,
    "kiloCalories": 498,
    "exercises": [
        {
            "startTime": "2017-01-23T18:20:18.000",
            "timezoneOffset": 60,
            "duration": "PT2754.128S",
            "sport": "RUNNING",
            "heartRate": {"min": 95, "avg": 138, "max": 164},
            "samples": {
                "heartRate": [{"dateTime": "2017-01-23T18:20:18.000", "value": 95}],
                "recordedRoute": [
                    {
                        "dateTime": "2017-01-23T19:40:45.801",
                        "latitude": 53.1,
                        "longitude": 8.86,
                        "altitude": 0.0,
                    }
                ],
            },
        }
    ],
}

ACTIVITY: dict[str, Any] = {
    "exportVersion": "2.6",
    "date": "2014-10-27",
    "summary": {
        "startTime": "08:10:30.000",
        "endTime": "23:54:00.000",
        "stepCount": 7088,
        "stepsDistance": 5233.99,
        "calories": 2160,
        "sleepQuality": 0.0,
        "sleepDuration": "PT0S",
        "inactivityAlertCount": 2,
        "dailyMetMinutes": 197.96,
        "activityLevels": [
            {"level": "CONTINUOS_MODERATE", "duration": "PT3240S"},
            {"level": "LIGHT", "duration": "PT1H"},
            {"level": "SEDENTARY", "duration": "PT9H30M"},
            {"level": "SLEEP", "duration": "PT7H"},
        ],
    },
    "samples": {
        "mets": [{"localTime": "08:10:30.000", "value": 1.75}],
        "steps": [{"localTime": "08:11:30.000", "value": 2}],
        "metSources": [""],
    },
}

SLEEP_RESULT: list[dict[str, Any]] = [
    {
        "night": "2025-12-10",
        "evaluation": {
            "sleepType": "SLEEP_PLUS_STAGES",
            "sleepSpan": "PT8H27M",
            "asleepDuration": "PT8H2M",
            "age": 40.4,
            "analysis": {
                "efficiencyPercent": 95.07,
                "continuityIndex": 3.8,
                "continuityClass": 3,
                "feedback": 11121,
            },
            "interruptions": {
                "totalDuration": "PT25M",
                "totalCount": 30,
                "shortDuration": "PT18M",
                "shortCount": 27,
                "longDuration": "PT7M",
                "longCount": 3,
            },
            "phaseDurations": {
                "wake": "PT25M",
                "rem": "PT2H9M30S",
                "light": "PT3H56M30S",
                "deep": "PT1H56M",
                "unknown": "PT0S",
                "remPercentage": 25.54,
                "deepPercentage": 22.88,
            },
        },
        "sleepResult": {
            "hypnogram": {
                "sleepStart": "2025-12-10T01:27:00.715+01:00",
                "sleepEnd": "2025-12-10T09:54:00.715+01:00",
                "alarmSnoozeTimes": [],
                "sleepStateChanges": [
                    {"offsetFromStart": "PT0S", "state": "WAKE"},
                    {"offsetFromStart": "PT6M30S", "state": "NONREM2"},
                    {"offsetFromStart": "PT2H", "state": "WAKE"},
                    {"offsetFromStart": "PT2H10M", "state": "REM"},
                    {"offsetFromStart": "PT8H27M", "state": "WAKE"},
                ],
                "sleepStartOffset": 0,
                "sleepEndOffset": 0,
                "rating": "SLEPT_QUITE_WELL",
                "birthday": "1985-01-01",
                "sleepGoal": "PT7H",
                "deviceId": "ABCD1234",
                "batteryRanOut": False,
            },
            "sleepCycles": {
                "cycles": {
                    "sleepCycleModels": [
                        {"secondsFromSleepStart": 5400, "sleepDepthStart": 0.97},
                        {"secondsFromSleepStart": 11000, "sleepDepthStart": 0.8},
                    ]
                }
            },
        },
    }
]

SLEEP_SCORE: list[dict[str, Any]] = [
    {
        "night": "2025-12-10",
        "sleepScoreResult": {
            "sleepScore": 83.6,
            "continuityScore": 70.0,
            "groupDurationScore": 91.5,
            "groupSolidityScore": 72.25,
            "groupRefreshScore": 80.0,
            "scoreRate": 4,
        },
        "sleepScoreBaselines": {"sleepTimeAverageMinutes": 455},
    }
]

RECHARGE: list[dict[str, Any]] = [
    {
        "night": "2025-02-27",
        "meanNightlyRecoveryRri": 1012,
        "meanNightlyRecoveryRmssd": 48,
        "meanNightlyRecoveryRespirationInterval": 4210,
        "ansStatus": 2.4,
        "ansRate": 4,
        "recoveryIndicator": 4,
        "recoveryIndicatorSubLevel": 37,
        "meanBaselineRri": 985,
        "sdBaselineRri": 41,
        "sleepTip": "…",
    },
    {
        "night": "2025-02-28",
        "meanNightlyRecoveryRri": 1000,
        "meanNightlyRecoveryRmssd": "NaN",
        "meanNightlyRecoveryRespirationInterval": 4000,
        "ansStatus": float("nan"),  # json.dumps writes the bare NaN token Polar writes
        "ansRate": 2,
        "recoveryIndicator": 2,
    },
]


GOOD_MEMBERS: dict[str, Any] = {
    "polar-user-data-export/" + REAL_SESSION_NAME: REAL_SESSION.read_bytes(),
    "polar-user-data-export/training-session_2025-08-16T17-12-22_8123456789-aa11.json": NEW_SESSION_TEXT,
    "polar-user-data-export/training-session-2017-01-23-263916482-bb22.json": OLD_SESSION,
    "polar-user-data-export/activity-2014-10-27-cc33.json": ACTIVITY,
    "polar-user-data-export/sleep_result_12345678-dd44.json": SLEEP_RESULT,
    "polar-user-data-export/sleep_score_12345678-ee55.json": SLEEP_SCORE,
    "polar-user-data-export/nightly_recovery_12345678-ff66.json": RECHARGE,
    "polar-user-data-export/training-target-2025-08-20-999-aa77.json": {"name": "planned"},
    "polar-user-data-export/247ohr_2025_08-bb88.json": {
        "deviceDays": [
            {
                "userId": 12345678,
                "deviceId": "ABCD1234",
                "date": "2025-08-05",
                "samples": [
                    {"heartRate": 58, "secondsFromDayStart": 61, "source": "TIMED_24_7"},
                    {"heartRate": 72, "secondsFromDayStart": 3600, "source": "TIMED_24_7"},
                ],
            },
            {
                "userId": 12345678,
                "deviceId": "EFGH5678",
                "date": "2025-08-05",
                "samples": [{"heartRate": 64, "secondsFromDayStart": 1800, "source": "TIMED_24_7"}],
            },
            {  # an older export's date object
                "userId": 12345678,
                "deviceId": "ABCD1234",
                "date": {"year": 2025, "month": 8, "day": 6},
                "samples": [{"heartRate": 55, "secondsFromDayStart": 86399}],
            },
        ]
    },
    "polar-user-data-export/nightly_recovery_blob_12345678-cc99.json": [],
    "polar-user-data-export/profile-picture-12345678-SMALL-dd00.data": b"\x89PNG",
}
"""A small export: every imported family, the real session under a ':' name, and three skipped families."""


def member_bytes(content: Any) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode()
    return json.dumps(content, ensure_ascii=False, indent=2).encode()


def write_zip(path: Path, members: dict[str, Any]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, member_bytes(content))
    return path


def write_folder(folder: Path, members: dict[str, Any]) -> Path:
    for name, content in members.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(member_bytes(content))
    return folder


@pytest.fixture(scope="session")
def export_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_zip(tmp_path_factory.mktemp("export") / "polar-user-data-export_1234.zip", GOOD_MEMBERS)


@pytest.fixture(scope="session")
def staging_models() -> Any:
    return load_models()


@pytest.fixture
def warehouse(tmp_path: Path, staging_models: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """An empty warehouse with the raw schema and every view model (the staging views among them)."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_raw_schema(con)
    create_views(con, staging_models)
    yield con
    con.close()
