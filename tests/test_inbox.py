"""The inbox: a zip dropped into ``$POLAR_HOME/inbox/<user>/`` is imported once it stops changing, once."""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import dagster as dg
import pytest

from polar_pipeline.definitions import build_definitions
from polar_pipeline.defs.inbox.jobs import IMPORT_JOB
from polar_pipeline.defs.inbox.sensors import INBOX_SENSOR, scan_inbox
from polar_pipeline.simulator import SimulatorConfig
from polar_pipeline.simulator.export import write_export
from tests.conftest import TEST_TODAY, Pipeline

USER = "inbox-user"
FIRST = TEST_TODAY - timedelta(days=19)


def _tick(pipeline: Pipeline, cursor: str | None) -> dg.SensorResult:
    sensor = build_definitions(pipeline.settings).resolve_sensor_def(INBOX_SENSOR)
    result = sensor(dg.build_sensor_context(instance=pipeline.instance, cursor=cursor))
    assert isinstance(result, dg.SensorResult)
    return result


def test_a_stable_zip_is_imported_once_and_leaves_the_inbox(pipeline: Pipeline) -> None:
    inbox = pipeline.settings.home_dir / "inbox"
    target = inbox / USER / "polar-user-data-export_inbox.zip"
    target.parent.mkdir(parents=True)
    (inbox / "not|a user").mkdir()
    (inbox / "not|a user" / "ignored.zip").write_bytes(b"never looked at")
    config = SimulatorConfig(seed=11, users=3, today=TEST_TODAY)
    stats = write_export(config, 0, target, first_day=FIRST, last_day=TEST_TODAY, samples=False)
    assert stats.first_day is not None and stats.last_day is not None

    first = _tick(pipeline, None)
    assert first.run_requests == []  # seen once: may still be copying

    second = _tick(pipeline, first.cursor)
    stat = target.stat()
    [request] = second.run_requests  # the folder that is no user id gave nothing
    assert request.job_name == IMPORT_JOB
    assert request.run_key == f"inbox-{USER}-{target.name}-{stat.st_size}-{stat.st_mtime_ns}"
    op_config = request.run_config["ops"]["import_inbox_zip"]["config"]
    assert op_config == {"path": str(target), "user_id": USER}

    job = build_definitions(pipeline.settings).resolve_job_def(IMPORT_JOB)
    result = job.execute_in_process(run_config=request.run_config, instance=pipeline.instance)
    assert result.success

    days = [
        row[0]
        for row in pipeline.query(
            "SELECT day FROM marts.daily_metrics WHERE user_id = ? ORDER BY day", [USER]
        )
    ]
    expected = [
        stats.first_day + timedelta(days=i) for i in range((stats.last_day - stats.first_day).days + 1)
    ]
    assert [day for day in days if day <= stats.last_day] == expected
    assert not target.exists()
    kept = list((pipeline.settings.home_dir / "imported" / USER).iterdir())
    assert [path.name.endswith(target.name) for path in kept] == [True]

    third = _tick(pipeline, second.cursor)
    assert third.run_requests == []


def test_a_zip_still_growing_waits(pipeline: Pipeline) -> None:
    target = pipeline.settings.home_dir / "inbox" / USER / "upload.zip"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"PK half")
    first = _tick(pipeline, None)
    with target.open("ab") as handle:
        handle.write(b" more bytes")
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 1_000_000_000))
    assert _tick(pipeline, first.cursor).run_requests == []


def test_a_folder_that_is_no_user_id_is_skipped_with_its_reason(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = pipeline.settings.home_dir / "inbox"
    (inbox / "not|a user").mkdir(parents=True)
    (inbox / "not|a user" / "export.zip").write_bytes(b"PK")
    (inbox / USER).mkdir()
    (inbox / USER / "export.zip").write_bytes(b"PK")
    with caplog.at_level(logging.WARNING):
        found = scan_inbox(inbox, logging.getLogger("inbox-test"))
    assert [(file.user_id, file.path.name) for file in found] == [(USER, "export.zip")]
    assert "not|a user" in caplog.text and "invalid user id" in caplog.text


def test_a_zip_that_is_no_export_fails_its_run_and_stays_in_the_inbox(pipeline: Pipeline) -> None:
    target = pipeline.settings.home_dir / "inbox" / USER / "holiday-photos.zip"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a zip at all")
    first = _tick(pipeline, None)
    second = _tick(pipeline, first.cursor)
    [request] = second.run_requests

    job = build_definitions(pipeline.settings).resolve_job_def(IMPORT_JOB)
    result = job.execute_in_process(
        run_config=request.run_config, instance=pipeline.instance, raise_on_error=False
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "not a Polar export" in str(failure.step_failure_data.error)  # type: ignore[union-attr]
    assert target.read_bytes() == b"not a zip at all"  # left where it was, for the person to look at
    assert not (pipeline.settings.home_dir / "imported").exists()
    assert not pipeline.settings.warehouse_path.exists()  # nothing was written
    # The same file version asks again under the same run key, which Dagster never launches twice.
    assert [again.run_key for again in _tick(pipeline, second.cursor).run_requests] == [request.run_key]
