"""Publish after every successful run that wrote the warehouse (backfills included)."""

from __future__ import annotations

import dagster as dg

PUBLISH_JOB = "publish_job"


def build_publish_sensor(publish_job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        request_job=publish_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=15,
        description="After any successful run that wrote the warehouse (backfills too), publish a snapshot.",
    )
    def publish_after_successful_run(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
        if context.dagster_run.job_name == PUBLISH_JOB:
            return dg.SkipReason("the run was itself a publish")
        return dg.RunRequest(run_key=f"publish-after-{context.dagster_run.run_id}")

    return publish_after_successful_run
