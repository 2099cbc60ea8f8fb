"""Each family read from export files into AccessLink-shaped raw records, with exact values."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from polar_pipeline.polar_export.archive import parse_export_json
from polar_pipeline.polar_export.importer import read_export
from tests.polar_export.conftest import (
    GOOD_MEMBERS,
    REAL_SESSION,
    REAL_SESSION_NAME,
    write_folder,
    write_zip,
)


def _payloads(path: Path, stream: str) -> dict[str, dict[str, Any]]:
    return {r.key: json.loads(r.payload_json) for r in read_export(path).records[stream]}


def test_real_session_exact_values(export_zip: Path) -> None:
    source = json.loads(REAL_SESSION.read_text())
    assert (source["durationMillis"], source["hrAvg"], source["hrMax"]) == (2071005, 160, 187)
    key = "export:" + hashlib.sha1(b"id:7520219187").hexdigest()
    payload = _payloads(export_zip, "exercises")[key]
    record = next(r for r in read_export(export_zip).records["exercises"] if r.key == key)
    assert record.day.isoformat() == "2022-06-18"
    assert payload["start_time"] == "2022-06-18T18:50:02"
    assert payload["start_time_utc_offset"] == -420
    assert payload["duration"] == "PT2071.005S"
    assert payload["sport"] == "OTHER" and payload["detailed_sport_info"] == "OTHER_INDOOR"
    assert payload["export_sport_id"] == "83"
    assert payload["heart_rate"] == {"average": 160, "maximum": 187}
    assert payload["distance"] == 0 and payload["calories"] == 447
    assert payload["training_load_pro"] == {"cardio-load": 79.3511, "muscle-load": -1}
    assert payload["export_member"] == "polar-user-data-export/" + REAL_SESSION_NAME
    # Per-sample series stay in the archive; the summary (and zones) come along.
    assert "samples" not in json.dumps(payload["export_summary"])
    assert [z["in_zone"] for z in payload["heart_rate_zones"]][:2] == ["PT20.999S", "PT101.012S"]


def test_new_and_old_format_sessions(export_zip: Path) -> None:
    payloads = _payloads(export_zip, "exercises")
    new = payloads["export:" + hashlib.sha1(b"id:8123456789").hexdigest()]
    assert new["start_time"] == "2025-08-16T17:12:22" and new["start_time_utc_offset"] == -420
    assert new["duration"] == "PT4455.001S"
    assert new["distance"] == 12034.5 and new["calories"] == 910
    assert new["heart_rate"] == {"average": 151, "maximum": 178}
    assert (new["sport"], new["running_index"], new["has_route"]) == ("RUNNING", 52, True)
    assert new["heart_rate_zones"] == [
        {"index": 0, "lower_limit": 94, "upper_limit": 113, "in_zone": "PT40.007S"}
    ]
    old_identity = "start:2017-01-23T18:20:18|duration:PT2753.875S|sport:RUNNING"
    old = payloads["export:" + hashlib.sha1(old_identity.encode()).hexdigest()]
    assert old["start_time"] == "2017-01-23T18:20:18" and old["start_time_utc_offset"] == 60
    assert old["duration"] == "PT2753.875S"
    assert (old["distance"], old["calories"]) == (6595.0, 498)
    assert old["heart_rate"] == {"average": 138, "maximum": 164}
    assert (old["sport"], old["has_route"], old["export_version"]) == ("RUNNING", True, "1.3")
    assert "recordedRoute" not in json.dumps(old)
    assert len(payloads) == 3  # the training target is never a session


def test_nan_tokens_and_strings_become_null() -> None:
    parsed = parse_export_json(b'{"a": [1, NaN, "NaN", 2.5, -Infinity], "b": "NaNa"}')
    assert parsed == {"a": [1, None, None, 2.5, None], "b": "NaNa"}


def test_nested_nan_strings_and_overflowing_numbers_become_null() -> None:
    """The walk runs only for members that may need it: deep "NaN" strings and too-large floats still go."""
    parsed = parse_export_json(b'{"s": [{"v": ["NaN", {"w": "NaN"}]}], "x": [1e999, 2E+400, 1.5e-05]}')
    assert parsed == {"s": [{"v": [None, {"w": None}]}], "x": [None, None, 1.5e-05]}
    assert parse_export_json(b'"NaN"') is None
    plain = b'{"samples": [{"dateTime": "2021-03-06T09:29:01", "value": 1.5e2}], "name": "NaNa"}'
    assert parse_export_json(plain) == json.loads(plain)


def test_skipped_families_are_counted(export_zip: Path) -> None:
    contents = read_export(export_zip)
    assert dict(contents.skipped) == {
        "training_target": 1,
        "nightly_recovery_blob": 1,
        "profile_picture": 1,
    }
    assert (min(contents.days).isoformat(), max(contents.days).isoformat()) == ("2014-10-27", "2025-12-10")
    assert all(not rejects for rejects in contents.rejects.values())


def test_same_zip_twice_and_folder_read_identically(export_zip: Path, tmp_path: Path) -> None:
    first, second = read_export(export_zip), read_export(export_zip)
    folder = read_export(write_folder(tmp_path / "unpacked", GOOD_MEMBERS))
    assert first.records == second.records == folder.records
    assert first.skipped == folder.skipped


def test_renamed_members_keep_their_keys(export_zip: Path, tmp_path: Path) -> None:
    renamed = {
        (f"other-top/training-session-renamed-{index}.json" if "training-session" in name else name): content
        for index, (name, content) in enumerate(GOOD_MEMBERS.items())
    }
    assert sum("renamed" in name for name in renamed) == 3
    original = {r.key: r.day for r in read_export(export_zip).records["exercises"]}
    again = {
        r.key: r.day for r in read_export(write_zip(tmp_path / "renamed.zip", renamed)).records["exercises"]
    }
    assert original == again and len(again) == 3


def test_heart_rate_months_merge_devices_per_day(export_zip: Path) -> None:
    days = _payloads(export_zip, "continuous_heart_rate")
    assert days["2025-08-05"]["heart_rate_samples"] == [
        {"heart_rate": 58, "sample_time": "00:01:01"},
        {"heart_rate": 64, "sample_time": "00:30:00"},
        {"heart_rate": 72, "sample_time": "01:00:00"},
    ]
    assert days["2025-08-05"]["export_devices"] == ["ABCD1234", "EFGH5678"]
    assert days["2025-08-06"]["heart_rate_samples"] == [{"heart_rate": 55, "sample_time": "23:59:59"}]
