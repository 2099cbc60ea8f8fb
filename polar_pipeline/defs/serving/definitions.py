"""Serving: the snapshot asset, its job, and the sensor that publishes after every successful write."""

import dagster as dg

from polar_pipeline.defs.serving.assets import serving_snapshot

publish_job = dg.define_asset_job(
    "publish_job",
    selection=dg.AssetSelection.assets(serving_snapshot),
    description="Copy the warehouse into a new serving snapshot and switch readers to it.",
)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    request_job=publish_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description="After any successful run that wrote the warehouse (backfills included), publish a snapshot.",
)
def publish_after_successful_run(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    if context.dagster_run.job_name == publish_job.name:
        return dg.SkipReason("the run was itself a publish")
    return dg.RunRequest(run_key=f"publish-after-{context.dagster_run.run_id}")


defs = dg.Definitions(assets=[serving_snapshot], jobs=[publish_job], sensors=[publish_after_successful_run])
