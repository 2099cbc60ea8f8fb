"""The Dagster code location: each folder under ``defs/`` adds its Definitions; resources are shared."""

import dagster as dg

from polar_pipeline.defs.ingest import definitions as ingest
from polar_pipeline.defs.serving import definitions as serving
from polar_pipeline.resources import build_resources
from polar_pipeline.settings import Settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The whole code location with resources bound to ``settings`` (default: the environment)."""
    return dg.Definitions.merge(
        ingest.defs, serving.defs, dg.Definitions(resources=build_resources(settings))
    )


defs = build_definitions()
