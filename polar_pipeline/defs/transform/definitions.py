"""Transform: staging views and mart tables built from ``dbt_like_sql/``, their checks, and the marts' job.

Building these definitions parses and validates every SQL model, so an unknown ``ref``, a cycle, SQL that
does not parse or a malformed YAML fails definitions loading with the offending file's name.
``POLAR_SQL_DIR`` points it at another model folder (tests, experiments).
"""

from functools import cache
from pathlib import Path

import dagster as dg

from polar_pipeline.defs.transform.assets import build_transform_assets
from polar_pipeline.orchestration.partitions import user_day_partitions
from polar_pipeline.settings import Settings
from polar_pipeline.sqlmodels import DEFAULT_SQL_DIR, ModelGraph, load_models


@cache
def _graph(sql_dir: Path) -> ModelGraph:
    return load_models(sql_dir)


def model_graph(settings: Settings) -> ModelGraph:
    """The validated models of ``settings.sql_dir`` (default ``dbt_like_sql/``), parsed once per process."""
    return _graph((settings.sql_dir or DEFAULT_SQL_DIR).resolve())


def build_defs(settings: Settings) -> dg.Definitions:
    transform = build_transform_assets(model_graph(settings), user_day_partitions(settings))
    # Partitioned by user × day: Dagster infers it from the marts (passing partitions_def is deprecated).
    transform_job = dg.define_asset_job(
        "transform_job",
        selection=dg.AssetSelection.assets(*transform.table_assets),
        description="Rebuild the SQL marts for a user × day slice from raw.* (one run per user's day range).",
    )
    return dg.Definitions(assets=[*transform.view_specs, *transform.table_assets], jobs=[transform_job])
