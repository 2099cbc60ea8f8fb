"""The Dagster code location: each folder under ``defs/`` adds its Definitions; resources are shared."""

import dagster as dg

from polar_pipeline.defs.ingest import definitions as ingest
from polar_pipeline.defs.ingest.assets import raw_assets
from polar_pipeline.defs.serving import definitions as serving
from polar_pipeline.defs.transform import definitions as transform
from polar_pipeline.resources import build_resources
from polar_pipeline.settings import Settings

pipeline_job = dg.define_asset_job(
    "pipeline_job",
    selection=dg.AssetSelection.assets(*raw_assets, *transform.mart_assets),
    description=(
        "The main job: pull AccessLink into raw.* and rebuild the SQL marts for a user × day slice, in one "
        "run (a publish follows every successful run)."
    ),
)


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The whole code location with resources bound to ``settings`` (default: the environment)."""
    return dg.Definitions.merge(
        ingest.defs,
        transform.defs,
        serving.defs,
        dg.Definitions(jobs=[pipeline_job], resources=build_resources(settings)),
    )


defs = build_definitions()
