"""The main job: AccessLink into raw.*, then the marts and the analytics, for a user × day slice, one run."""

import dagster as dg

from polar_pipeline.defs.analytics.assets import ANALYTICS_GROUP
from polar_pipeline.defs.ingest.assets import INGEST_GROUP
from polar_pipeline.defs.transform.assets import MARTS_GROUP
from polar_pipeline.settings import Settings

PIPELINE_JOB = "pipeline_job"


def build_defs(_settings: Settings) -> dg.Definitions:
    pipeline_job = dg.define_asset_job(
        PIPELINE_JOB,
        selection=dg.AssetSelection.groups(INGEST_GROUP, MARTS_GROUP, ANALYTICS_GROUP),
        description=(
            "The main job: pull AccessLink into raw.*, rebuild the SQL marts and the analytics for a user × "
            "day slice, in one run (a publish follows every successful run)."
        ),
    )
    return dg.Definitions(jobs=[pipeline_job])
