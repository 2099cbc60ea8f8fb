"""Publish after every run that wrote the warehouse (backfills included), whether it succeeded or not.

After a success readers get the new rows. After a failure the marts are as the last good run left them (a
failed step writes nothing), but ``analytics.data_health`` is new: readers, ``polar-flow status`` and the
dashboard see the failing sync now, not after the next success.
"""

from __future__ import annotations

import dagster as dg

PUBLISH_JOB = "publish_job"


def build_publish_sensors(publish_job: dg.UnresolvedAssetJobDefinition) -> list[dg.SensorDefinition]:
    def publish_after(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
        run = context.dagster_run
        if run.job_name == PUBLISH_JOB:
            return dg.SkipReason("the run was itself a publish")
        return dg.RunRequest(run_key=f"publish-after-{run.run_id}")

    sensors: list[dg.SensorDefinition] = []
    for name, status, description in (
        (
            "publish_after_successful_run",
            dg.DagsterRunStatus.SUCCESS,
            "After any successful run that wrote the warehouse (backfills too), publish a snapshot.",
        ),
        (
            "publish_after_failed_run",
            dg.DagsterRunStatus.FAILURE,
            "After a failed run, publish too, so data health shows the failure to every reader.",
        ),
    ):
        sensors.append(
            dg.run_status_sensor(
                name=name,
                run_status=status,
                request_job=publish_job,
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=15,
                description=description,
            )(publish_after)
        )
    return sensors
