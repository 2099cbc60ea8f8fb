"""The alert sensors: rules evaluated after every publish, and what is due delivered every 30 seconds.

* ``alerts_after_publish`` (run-status sensor on a successful ``publish_job`` run): every rule over the new
  snapshot at each user's local today (``alerts.evaluation.evaluate_snapshot``), new episodes recorded, and
  what is due sent at once. A publish follows every run that wrote the warehouse, failed ones included, so
  a sync that lost Polar's access alerts too.
* ``alert_deliveries`` (every 30 s): the live rules (data stale, access lost), which need no run to change,
  and every delivery that is due again: a retry after its back-off, or one held until quiet hours ended.

Both send directly from the tick, as Dagster's own notification sensors do, within a time budget; what is
not sent in one tick is due in the next. Each tick's summary (never a URL) is its skip message.
"""

from datetime import UTC, datetime

import dagster as dg

from polar_pipeline.alerts.delivery import deliver_due
from polar_pipeline.alerts.evaluation import EvaluationReport, evaluate_live, evaluate_snapshot, user_zones
from polar_pipeline.alerts.store import open_alert_store
from polar_pipeline.defs.serving.sensors import PUBLISH_JOB
from polar_pipeline.settings import Settings

ALERTS_AFTER_PUBLISH = "alerts_after_publish"
ALERT_DELIVERIES = "alert_deliveries"
DELIVERY_INTERVAL_SECONDS = 30


def alerts_after_publish_tick(settings: Settings, run: dg.DagsterRun) -> str:
    """Evaluate every rule over the snapshot ``run`` published and send what is due; the tick's summary."""
    store = open_alert_store(settings)
    report = evaluate_snapshot(settings, store, datetime.now(UTC))
    sent = deliver_due(settings, store, user_zones(settings))
    return f"after publish run {run.run_id}: {report.summary()}; deliveries: {sent.summary()}"


def alert_deliveries_tick(settings: Settings) -> str:
    """The live rules, then every delivery due; the tick's summary."""
    store = open_alert_store(settings)
    zones = user_zones(settings)
    report = EvaluationReport()
    evaluate_live(settings, store, datetime.now(UTC), zones, report)
    sent = deliver_due(settings, store, zones)
    return f"live rules: {report.summary()}; deliveries: {sent.summary()}"


def build_alert_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    @dg.run_status_sensor(
        name=ALERTS_AFTER_PUBLISH,
        run_status=dg.DagsterRunStatus.SUCCESS,
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "After each successful publish: every alert rule over the new snapshot, new episodes recorded "
            "once, and sent through each user's channels (docs/alerts.md)."
        ),
    )
    def alerts_after_publish(context: dg.RunStatusSensorContext) -> dg.SkipReason:
        run = context.dagster_run
        if run.job_name != PUBLISH_JOB:
            return dg.SkipReason(f"run {run.run_id} was a {run.job_name} run, not a publish")
        summary = alerts_after_publish_tick(settings, run)
        context.log.info(summary)
        return dg.SkipReason(summary)

    @dg.sensor(
        name=ALERT_DELIVERIES,
        minimum_interval_seconds=DELIVERY_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Every 30 s: the live alert rules (no new data for 36 h, Polar access lost), then every delivery "
            "due: retries with back-off, alerts held until quiet hours ended."
        ),
    )
    def alert_deliveries(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        summary = alert_deliveries_tick(settings)
        context.log.info(summary)
        return dg.SkipReason(summary)

    return [alerts_after_publish, alert_deliveries]
