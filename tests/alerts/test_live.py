"""The rules judged at the moment: Polar access lost on a real 401 and 403 from the simulator, through a sync,
a publish and the sensor; and data going stale, told apart as watch not worn, sync failing or no sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from polar_pipeline.accesslink import AccessLinkClient
from polar_pipeline.alerts.evaluation import EvaluationReport, evaluate_live, user_zones
from polar_pipeline.alerts.rules import ACCESS_LOST, DATA_STALE
from polar_pipeline.alerts.store import open_alert_store
from polar_pipeline.connections import open_control_store
from polar_pipeline.defs.alerts import definitions as alerts_defs
from polar_pipeline.defs.alerts.sensors import ALERTS_AFTER_PUBLISH
from polar_pipeline.operations import publish, sync
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME
from polar_pipeline.sync_outcomes import SyncAttempt, SyncOutcomes
from tests.alerts.conftest import ServedCopy, Webhook
from tests.conftest import Pipeline


def test_a_real_401_and_403_from_polar_alert_that_access_was_lost(
    pipeline: Pipeline, webhook: Webhook
) -> None:
    settings = pipeline.settings
    revoked, unregistered = (str(user["x_user_id"]) for user in pipeline.users[:2])
    pipeline.add_users(1)  # registered, then deregistered below: its token is revoked (401)
    with AccessLinkClient(
        settings.accesslink_url,
        token_url=settings.token_url,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
    ) as client:
        client.deregister_user(pipeline.users[0]["access_token"], int(revoked))
    # A token stored without registering the account: AccessLink answers 403 (not registered).
    open_control_store(settings).upsert_user(unregistered, pipeline.users[1]["access_token"])
    pipeline.instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [unregistered])
    store = open_alert_store(settings)
    store.add_channel(revoked, webhook.url(revoked))
    store.add_channel(unregistered, webhook.url(unregistered))
    assert not sync(settings, days=2, instance=pipeline.instance).success
    assert {user.user_id: user.status for user in open_control_store(settings).list_users()} == {
        revoked: "reauthorize",
        unregistered: "not_registered",
    }
    assert publish(settings, instance=pipeline.instance)
    run = pipeline.instance.get_runs(limit=1)[0]
    sensor = next(s for s in alerts_defs.build_defs(settings).sensors or [] if s.name == ALERTS_AFTER_PUBLISH)
    event = dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name)
    sensor(
        dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=pipeline.instance, dagster_run=run, dagster_event=event
        )
    )
    posts = {post.path.strip("/"): post.body for post in webhook.wait_for(2)}
    assert set(posts) == {revoked, unregistered}
    assert posts[revoked]["title"] == "polar-flow: Polar access lost: re-authorize"
    assert "Polar rejected the access token (401)" in posts[revoked]["message"]
    assert "Polar refused the account (403)" in posts[unregistered]["message"]
    assert f"polar-flow connect --user {revoked}" in posts[revoked]["message"]
    # Still lost at the next look: the same episode, not a second alert.
    report = EvaluationReport()
    evaluate_live(settings, store, datetime.now(UTC), user_zones(settings), report)
    assert report.recorded == [] and report.current == 2


def test_stale_data_says_whether_the_watch_is_not_worn_or_the_sync_fails(served_copy: ServedCopy) -> None:
    settings = served_copy.settings
    store = open_alert_store(settings)
    zones = user_zones(settings)
    now = datetime.now(UTC)
    fresh = EvaluationReport()
    evaluate_live(settings, store, now, zones, fresh)
    assert fresh.recorded == []  # the served data arrived minutes ago
    later = now + timedelta(hours=40)  # nothing new since: 40 h > 36 h
    not_worn, failing, idle = served_copy.users
    outcomes = SyncOutcomes(settings.control_store_path)
    outcomes.record([SyncAttempt(not_worn, "run-ok", True)], later - timedelta(hours=1))
    outcomes.record([SyncAttempt(failing, "run-bad", False, "TransientError: AccessLink 503")], later)
    report = EvaluationReport()
    evaluate_live(settings, store, later, zones, report)
    alerts = {episode.user_id: episode for episode in report.recorded}
    assert {episode.rule for episode in report.recorded} == {DATA_STALE}
    assert set(alerts) == {not_worn, failing, idle}
    assert (
        "the watch is not worn" in alerts[not_worn].body and "No new data for 40 h" in alerts[not_worn].body
    )
    assert "The sync is failing (1 attempts in a row; retries continue): TransientError: AccessLink 503" in (
        alerts[failing].body
    )
    assert "no sync ran" in alerts[idle].title and "No sync succeeded in that time" in alerts[idle].body
    again = EvaluationReport()
    evaluate_live(settings, store, later + timedelta(hours=3), zones, again)
    assert again.recorded == [] and again.current == 3
    # A user who turned the rule off is not told.
    store.set_rule(idle, DATA_STALE, enabled=False)
    store.set_rule(idle, ACCESS_LOST, enabled=False)
    quiet = EvaluationReport()
    evaluate_live(settings, store, later + timedelta(hours=4), zones, quiet)
    assert quiet.current == 2
