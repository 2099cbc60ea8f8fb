"""Serving: the snapshot asset, its job, and the sensor that publishes after every successful write."""

import dagster as dg

from polar_pipeline.defs.analytics.definitions import ALL_TABLES as ANALYTICS_TABLES
from polar_pipeline.defs.ingest.assets import raw_asset_key
from polar_pipeline.defs.serving.assets import build_serving_snapshot
from polar_pipeline.defs.serving.health import build_data_health
from polar_pipeline.defs.serving.sensors import PUBLISH_JOB, build_publish_sensors
from polar_pipeline.defs.transform.assets import table_keys
from polar_pipeline.defs.transform.definitions import model_graph
from polar_pipeline.ingest.streams import RAW_STREAMS
from polar_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    raw_keys = [raw_asset_key(spec.stream) for spec in RAW_STREAMS]
    data_health = build_data_health(raw_keys)
    upstream = raw_keys + table_keys(model_graph(settings))
    upstream += [table.key for table in ANALYTICS_TABLES] + [data_health.key]
    serving_snapshot = build_serving_snapshot(upstream)
    publish_job = dg.define_asset_job(
        PUBLISH_JOB,
        selection=dg.AssetSelection.assets(data_health, serving_snapshot),
        description=(
            "Evaluate every user's data health, then copy the warehouse into a new serving snapshot and "
            "switch readers to it."
        ),
    )
    return dg.Definitions(
        assets=[data_health, serving_snapshot],
        jobs=[publish_job],
        sensors=build_publish_sensors(publish_job),
    )
