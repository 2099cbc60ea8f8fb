"""Ingest: the four raw AccessLink assets and the job that runs them over a user × day slice."""

import dagster as dg

from polar_pipeline.defs.ingest.assets import build_raw_assets
from polar_pipeline.defs.transform.definitions import model_graph
from polar_pipeline.orchestration.partitions import user_day_partitions
from polar_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    raw_assets = build_raw_assets(user_day_partitions(settings), model_graph(settings))
    ingest_job = dg.define_asset_job(
        "ingest_job",
        selection=dg.AssetSelection.assets(*raw_assets),
        description="Pull AccessLink streams for a user × day slice into raw.* (one run per slice).",
    )
    return dg.Definitions(assets=raw_assets, jobs=[ingest_job])
