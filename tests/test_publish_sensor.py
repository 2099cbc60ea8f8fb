"""The sensors that publish a snapshot after every run that wrote the warehouse, failed runs included."""

from __future__ import annotations

import dagster as dg

from polar_pipeline.defs.serving import definitions as serving
from polar_pipeline.defs.serving.sensors import PUBLISH_JOB
from polar_pipeline.settings import get_settings
from tests.support.instances import ephemeral_instance

publish_after_successful_run, publish_after_failed_run = serving.build_defs(get_settings()).sensors or []


def evaluate(
    job_name: str, sensor: dg.SensorDefinition = publish_after_successful_run, failed: bool = False
) -> dg.RunRequest | dg.SkipReason:
    with ephemeral_instance() as instance:
        run = instance.create_run_for_job(
            job_def=dg.GraphDefinition(name=job_name, node_defs=[]).to_job(), run_id=None
        )
        event = dg.DagsterEvent(
            event_type_value=(
                dg.DagsterEventType.RUN_FAILURE if failed else dg.DagsterEventType.RUN_SUCCESS
            ).value,
            job_name=job_name,
            message="done",
        )
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=instance, dagster_run=run,
            dagster_event=event,
        )  # fmt: skip
        return sensor(context)  # type: ignore[no-any-return]


def test_a_successful_pipeline_run_requests_a_publish_keyed_by_that_run() -> None:
    request = evaluate("pipeline_job")
    assert isinstance(request, dg.RunRequest)
    assert request.run_key is not None and request.run_key.startswith("publish-after-")
    assert [target.job_name for target in publish_after_successful_run.targets] == [PUBLISH_JOB]


def test_a_publish_run_does_not_trigger_another_publish() -> None:
    assert isinstance(evaluate(PUBLISH_JOB), dg.SkipReason)


def test_a_failed_pipeline_run_is_published_too_so_data_health_shows_it() -> None:
    request = evaluate("pipeline_job", publish_after_failed_run, failed=True)
    assert isinstance(request, dg.RunRequest)
    assert [target.job_name for target in publish_after_failed_run.targets] == [PUBLISH_JOB]
    assert isinstance(evaluate(PUBLISH_JOB, publish_after_failed_run, failed=True), dg.SkipReason)
