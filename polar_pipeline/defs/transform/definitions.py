"""Transform: staging views and mart tables built from ``dbt_like_sql/``, and the job that runs the marts.

Importing this module parses and validates every SQL model, so an unknown ``ref``, a cycle or SQL that does
not parse fails definitions loading with the offending file's name. ``POLAR_SQL_DIR`` points it at another
model folder (tests, experiments); the default is the repository's ``dbt_like_sql/``.
"""

import os
from pathlib import Path

import dagster as dg

from polar_pipeline.defs.transform.assets import build_transform_assets
from polar_pipeline.defs.transform.sql_models import DEFAULT_SQL_DIR

SQL_DIR_ENV = "POLAR_SQL_DIR"

transform_assets = build_transform_assets(Path(os.environ.get(SQL_DIR_ENV) or DEFAULT_SQL_DIR))
staging_specs = transform_assets.view_specs
mart_assets = transform_assets.table_assets

# Partitioned by user × day: Dagster infers it from the marts (passing partitions_def is deprecated in 1.13).
transform_job = dg.define_asset_job(
    "transform_job",
    selection=dg.AssetSelection.assets(*mart_assets),
    description="Rebuild the SQL marts for a user × day slice from raw.* (one run per user's day range).",
)

transform_defs = dg.Definitions(assets=[*staging_specs, *mart_assets], jobs=[transform_job])
defs = transform_defs
