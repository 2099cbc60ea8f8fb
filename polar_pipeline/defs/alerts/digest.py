"""The weekly digest: an hourly schedule that starts ``weekly_digest_job`` when some user's digest is due.

A user's digest is due once their digest weekday and time (in their own zone) have passed and the store has
no digest of that day for them; the job composes it from the serving snapshot, records it (exactly once, by
its key) and sends it with its chart. A tick that finds nothing due is skipped, so the job runs about once
per user and week.
"""

import hashlib
from datetime import UTC, datetime

import dagster as dg
from dagster_shared.check import CheckError

from polar_pipeline.alerts.delivery import deliver_due
from polar_pipeline.alerts.evaluation import due_digests, record_due_digests, user_zones
from polar_pipeline.alerts.store import open_alert_store
from polar_pipeline.settings import Settings

WEEKLY_DIGEST_JOB = "weekly_digest_job"
WEEKLY_DIGEST_SCHEDULE = "weekly_digest"
DIGEST_BUDGET_SECONDS = 600.0


def send_digests(settings: Settings, now: datetime) -> str:
    """Record the digests due at ``now`` and send everything due; the summary."""
    store = open_alert_store(settings)
    report = record_due_digests(settings, store, now)
    sent = deliver_due(settings, store, user_zones(settings), budget_seconds=DIGEST_BUDGET_SECONDS)
    return f"weekly digests: {report.summary()}; deliveries: {sent.summary()}"


def build_digest_job(settings: Settings) -> dg.JobDefinition:
    @dg.op(description="Compose, record and send the weekly digests that are due (each once).")
    def send_weekly_digests(context: dg.OpExecutionContext) -> None:
        context.log.info(send_digests(settings, datetime.now(UTC)))

    @dg.job(
        name=WEEKLY_DIGEST_JOB,
        description="The weekly digests that are due: the week against the 4 before, insights, a chart.",
        tags={"polar-flow/trigger": "weekly_digest"},
    )
    def weekly_digest_job() -> None:
        send_weekly_digests()

    return weekly_digest_job


def _tick_time(context: dg.ScheduleEvaluationContext) -> datetime:
    try:
        return context.scheduled_execution_time
    except CheckError:  # evaluated outside the daemon (a test, "Test schedule" in the UI)
        return datetime.now(UTC)


def build_digest_schedule(settings: Settings, job: dg.JobDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=WEEKLY_DIGEST_SCHEDULE,
        cron_schedule="0 * * * *",
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Hourly: starts weekly_digest_job when some user's digest time (their weekday and time, "
            f"default {settings.digest_weekday} {settings.digest_time}, in their zone) has passed and their "
            "digest of that day is not recorded yet."
        ),
    )
    def weekly_digest(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        now = _tick_time(context)
        due = due_digests(settings, open_alert_store(settings), now, user_zones(settings))
        if not due:
            return dg.SkipReason("no weekly digest is due")
        names = ",".join(f"{user}@{day}" for user, day in due)
        return dg.RunRequest(run_key=f"weekly-digest-{hashlib.sha256(names.encode()).hexdigest()[:16]}")

    return weekly_digest
