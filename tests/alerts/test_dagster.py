"""Through Dagster: a real publish run, then the ``alerts_after_publish`` sensor on it, to a real receiver;
the ``alert_deliveries`` sensor; and the ``weekly_digest`` schedule starting its job. The latency from the
publish run's end to the receiver is measured (the daemon adds at most the sensor's interval in front)."""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import numpy as np
import pytest

from polar_pipeline.alerts.rules import WEEKLY_DIGEST
from polar_pipeline.alerts.store import open_alert_store
from polar_pipeline.defs.alerts import definitions as alerts_defs
from polar_pipeline.defs.alerts.sensors import ALERT_DELIVERIES, ALERTS_AFTER_PUBLISH
from polar_pipeline.defs.serving.sensors import PUBLISH_JOB
from polar_pipeline.operations import publish
from polar_pipeline.warehouse.snapshot import read_pointer
from tests.alerts.conftest import ServedCopy, Webhook, attachment_bytes
from tests.support.instances import ephemeral_instance

SECRET = "dagster-S3CRET-pw"


def _sensor(defs: dg.Definitions, name: str) -> dg.SensorDefinition:
    return next(sensor for sensor in defs.sensors or [] if sensor.name == name)


def _after(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    event = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name, message="done"
    )
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_instance=instance, dagster_run=run, dagster_event=event
    )
    result = sensor(context)
    assert isinstance(result, dg.SkipReason)
    return str(result.skip_message)


def _expected_hrv_episodes(copy: ServedCopy) -> set[str]:
    """Users whose 7-day HRV was below its band on each of the 3 days up to yesterday or today (SQL here,
    independent of the rule code)."""
    info = read_pointer(copy.settings.snapshots_dir)
    assert info is not None
    today = copy.settings.today
    assert today is not None
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        rows = con.execute(
            "SELECT DISTINCT a.user_id FROM marts.hrv_status a "
            "JOIN marts.hrv_status b ON b.user_id = a.user_id AND b.day = a.day - 1 "
            "JOIN marts.hrv_status c ON c.user_id = a.user_id AND c.day = a.day - 2 "
            "WHERE a.status = 'below' AND b.status = 'below' AND c.status = 'below' AND a.day >= ?",
            [today - timedelta(days=1)],
        ).fetchall()
    finally:
        con.close()
    return {str(row[0]) for row in rows}


def test_a_publish_run_alerts_through_the_sensor_once_and_the_latency_is_measured(
    served_copy: ServedCopy, webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = served_copy.settings
    store = open_alert_store(settings)
    for user in served_copy.users:
        store.add_channel(user, webhook.url(user, secret=SECRET))
    expected = _expected_hrv_episodes(served_copy)
    assert expected, "the served history ends with a user's HRV below its band for 3 days"
    defs = alerts_defs.build_defs(settings)
    after_publish = _sensor(defs, ALERTS_AFTER_PUBLISH)
    with ephemeral_instance() as instance:
        assert publish(settings, instance=instance)
        (run,) = instance.get_runs(limit=1)
        assert run.job_name == PUBLISH_JOB and run.is_success
        ended = instance.get_run_stats(run.run_id).end_time
        assert ended is not None
        summary = _after(after_publish, instance, run)
        posts = webhook.wait_for(1)
        latency = (posts[0].received_at.timestamp() - ended, posts[-1].received_at.timestamp() - ended)
        print(f"\nrun end -> alert at the receiver: {latency[0]:.2f} s (last: {latency[1]:.2f} s); {summary}")
        assert 0 < latency[0] < 30
        hrv = [p for p in webhook.accepted if "HRV below its normal band" in p.body["title"]]
        assert {p.path.strip("/") for p in hrv} == expected
        count = len(webhook.accepted)
        assert f"{count} new alert(s)" in summary and f"{count} sent" in summary
        # The same publish again (a re-run), its sensor, and the every-30-s sensor: nothing twice.
        assert publish(settings, instance=instance)
        rerun = instance.get_runs(limit=1)[0]
        assert rerun.run_id != run.run_id
        assert "0 new alert(s)" in _after(after_publish, instance, rerun)
        deliveries = _sensor(defs, ALERT_DELIVERIES)
        result = deliveries(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.SkipReason) and "0 sent" in str(result.skip_message)
        # A run that is not a publish does not evaluate anything.
        other = instance.create_run_for_job(
            job_def=dg.GraphDefinition(name="pipeline_job", node_defs=[]).to_job(), run_id=None
        )
        assert "not a publish" in _after(after_publish, instance, other)
        assert len(webhook.accepted) == count
        events = [str(event) for r in instance.get_runs() for event in instance.all_logs(r.run_id)]
    assert events and not any(SECRET in text for text in events)
    assert SECRET not in caplog.text


def test_the_weekly_digest_schedule_starts_its_job_once_and_the_digest_arrives(
    served_copy: ServedCopy, webhook: Webhook
) -> None:
    settings = served_copy.settings
    user = served_copy.users[0]
    store = open_alert_store(settings)
    store.add_channel(user, webhook.url())
    today = settings.today
    assert today is not None and today.weekday() == 6  # the suite's day is a Sunday
    store.set_rule(user, WEEKLY_DIGEST, options={"weekday": "sun", "time": "00:00"})
    defs = alerts_defs.build_defs(settings)
    (schedule,) = defs.schedules or []
    (job,) = defs.jobs or []
    assert isinstance(schedule, dg.ScheduleDefinition) and isinstance(job, dg.JobDefinition)
    with ephemeral_instance() as instance:
        request = schedule(
            dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime.now(UTC))
        )
        assert isinstance(request, dg.RunRequest) and request.run_key
        assert job.execute_in_process(instance=instance).success
        (post,) = webhook.wait_for(1)
        again = schedule(
            dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime.now(UTC))
        )
        assert isinstance(again, dg.SkipReason)
        assert job.execute_in_process(instance=instance).success
    assert len(webhook.accepted) == 1
    assert attachment_bytes(post)[0].startswith(b"\x89PNG")
    body = post.body["message"]
    found = re.search(r"- HRV: (\d+) ms against (\d+) ms", body)
    assert found is not None, body
    info = read_pointer(settings.snapshots_dir)
    assert info is not None
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        rows = con.execute(
            "SELECT day, ln_rmssd FROM marts.daily_metrics WHERE user_id = ? AND day BETWEEN ? AND ? "
            "AND ln_rmssd IS NOT NULL",
            [user, today - timedelta(days=35), today - timedelta(days=1)],
        ).fetchall()
    finally:
        con.close()
    week = np.array([value for day, value in rows if day >= today - timedelta(days=7)])
    before = np.array([value for day, value in rows if day < today - timedelta(days=7)])
    assert found.groups() == (f"{math.exp(week.mean()):.0f}", f"{math.exp(before.mean()):.0f}")
