"""Alerts: the sensors that evaluate and deliver, the weekly digest's job and schedule (all on by default)."""

import dagster as dg

from polar_pipeline.defs.alerts.digest import build_digest_job, build_digest_schedule
from polar_pipeline.defs.alerts.sensors import build_alert_sensors
from polar_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    digest_job = build_digest_job(settings)
    return dg.Definitions(
        jobs=[digest_job],
        schedules=[build_digest_schedule(settings, digest_job)],
        sensors=build_alert_sensors(settings),
    )
