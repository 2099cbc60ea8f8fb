"""Bad members and records are quarantined with their file name and reason; the import goes on."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from polar_pipeline.polar_export.importer import read_export, store_export
from tests.polar_export.conftest import NEW_SESSION_TEXT, OLD_SESSION, RECHARGE, SLEEP_SCORE

CORRUPT_MARKER = b'{"date": "2014-10-28", "marker": "CORRUPT-ME"}'

BAD_MEMBERS = {
    "training-session-2025-08-17T07:00:00-1-x.json": NEW_SESSION_TEXT[: len(NEW_SESSION_TEXT) // 2],
    "training-session-2025-08-18-2-y.json": b"<html>not json</html>",
    "training-session-2025-08-19-3-z.json": {**OLD_SESSION, "exportVersion": "9.0"},
    "training-session-2025-08-20-4-w.json": {k: v for k, v in OLD_SESSION.items() if k != "startTime"},
    "activity-2014-10-28-v.json": CORRUPT_MARKER,
    "nightly_recovery_1-u.json": [{"meanNightlyRecoveryRri": 1000}, RECHARGE[0]],
    "sleep_score_1-t.json": SLEEP_SCORE,
    "sleep_result_1-s.json": {"night": "2025-12-10"},
}


@pytest.fixture(scope="module")
def bad_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "bad.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in BAD_MEMBERS.items():
            archive.writestr(name, content if isinstance(content, bytes) else _text(content))
    # Stored (uncompressed) members: overwrite the activity member's bytes so its CRC no longer matches.
    data = path.read_bytes()
    at = data.index(CORRUPT_MARKER)
    path.write_bytes(
        data[:at] + CORRUPT_MARKER.replace(b"CORRUPT", b"XXXXXXX") + data[at + len(CORRUPT_MARKER) :]
    )
    return path


def _text(content: object) -> bytes:
    return content.encode() if isinstance(content, str) else json.dumps(content).encode()


def test_every_bad_input_is_quarantined_with_file_and_reason(bad_zip: Path) -> None:
    contents = read_export(bad_zip)
    reasons = {stream: sorted(q.reason for q in rejects) for stream, rejects in contents.rejects.items()}
    sessions = reasons["exercises"]
    assert len(sessions) == 4
    assert sessions[0].startswith("training-session-2025-08-17T07:00:00-1-x.json: not valid JSON (truncated")
    assert sessions[1].startswith("training-session-2025-08-18-2-y.json: not valid JSON")
    assert sessions[2] == (
        "training-session-2025-08-19-3-z.json: training session: unknown format version exportVersion='9.0'"
    )
    assert sessions[3] == "training-session-2025-08-20-4-w.json: training session: no usable startTime (None)"
    assert len(reasons["activity"]) == 1
    assert reasons["activity"][0].startswith(
        "activity-2014-10-28-v.json: unreadable member (BadZipFile: Bad CRC"
    )
    assert reasons["nightly_recharge"] == [
        "nightly_recovery_1-u.json: nightly recovery: no usable night (None)"
    ]
    assert reasons["sleep"] == [
        "sleep_result_1-s.json: expected a JSON array of nights, found dict",
        "sleep_score_1-t.json: sleep score without a sleep result for the night",
    ]
    score_reject = next(q for q in contents.rejects["sleep"] if q.key is not None)
    assert (score_reject.key, str(score_reject.day)) == ("2025-12-10", "2025-12-10")
    # the import went on: the good night of the recovery file is there, nothing else
    assert [r.key for r in contents.records["nightly_recharge"]] == ["2025-02-27"]
    assert sum(len(records) for records in contents.records.values()) == 1


def test_quarantine_rows_land_in_the_warehouse_once(
    bad_zip: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    first = store_export(warehouse, "u1", read_export(bad_zip), fetched_at=at)
    again = store_export(warehouse, "u1", read_export(bad_zip), fetched_at=at)
    assert first.quarantined == again.quarantined == 8
    rows = warehouse.sql(
        "SELECT stream, count(*) FROM raw.quarantine GROUP BY stream ORDER BY stream"
    ).fetchall()
    assert rows == [("activity", 1), ("exercises", 4), ("nightly_recharge", 1), ("sleep", 2)]
    ((payload_text,),) = warehouse.sql(
        "SELECT payload FROM raw.quarantine WHERE stream = 'activity'"
    ).fetchall()
    payload = json.loads(payload_text)
    assert payload["export_member"] == "activity-2014-10-28-v.json"


def test_not_an_export_is_a_value_error(tmp_path: Path) -> None:
    not_zip = tmp_path / "export.zip"
    not_zip.write_text("plain text")
    with pytest.raises(ValueError, match="not a Polar export"):
        read_export(not_zip)
    with pytest.raises(ValueError, match="not a Polar export"):
        read_export(tmp_path / "missing.zip")
