"""The Dagster code location: each folder under ``defs/`` builds its Definitions; this module merges them.

Definitions are built when Dagster asks for them (``@dg.definitions``), not at import, so the settings
they depend on (partition start, SQL folder) are read then.
"""

import dagster as dg

from polar_pipeline.defs.alerts import definitions as alerts
from polar_pipeline.defs.analytics import definitions as analytics
from polar_pipeline.defs.inbox import definitions as inbox
from polar_pipeline.defs.ingest import definitions as ingest
from polar_pipeline.defs.pipeline import definitions as pipeline
from polar_pipeline.defs.refresh import definitions as refresh
from polar_pipeline.defs.requests import definitions as requests
from polar_pipeline.defs.serving import definitions as serving
from polar_pipeline.defs.transform import definitions as transform
from polar_pipeline.orchestration.resources import build_resources
from polar_pipeline.settings import Settings, get_settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The whole code location with resources bound to ``settings`` (default: the environment)."""
    settings = settings or get_settings()
    return dg.Definitions.merge(
        ingest.build_defs(settings),
        transform.build_defs(settings),
        analytics.build_defs(settings),
        serving.build_defs(settings),
        pipeline.build_defs(settings),
        requests.build_defs(settings),
        refresh.build_defs(settings),
        inbox.build_defs(settings),
        alerts.build_defs(settings),
        # Every step of a run in the run's own process: the duckdb pool lets one step at a time touch the
        # warehouse anyway, and a process per step cost ~5 s each (a 3-day sync from the API took 2 min).
        dg.Definitions(resources=build_resources(settings), executor=dg.in_process_executor),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
