"""Ingest: the four raw AccessLink assets and the job that runs them over a user × day slice."""

import dagster as dg

from polar_pipeline.defs.ingest.assets import raw_assets

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(*raw_assets),
    description="Pull AccessLink streams for a user × day slice into raw.* (one run per slice).",
)

defs = dg.Definitions(assets=raw_assets, jobs=[ingest_job])
