"""A persistent DAGSTER_HOME under POLAR_HOME, so users (dynamic partitions) and run history survive."""

from __future__ import annotations

import os
from pathlib import Path

from polar_pipeline.settings import Settings

DAGSTER_YAML = """\
# Written by polar-flow. The warehouse has exactly one writer: every asset touching DuckDB is in the
# "duckdb" pool, and each pool has one slot.
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 2
    tag_concurrency_limits:
      - key: dagster/backfill
        limit: 1
telemetry:
  enabled: false
"""


def prepare_dagster_home(settings: Settings) -> Path:
    """Create ``$POLAR_HOME/dagster`` with our dagster.yaml (kept if present) and export DAGSTER_HOME.

    An explicit DAGSTER_HOME in the environment wins.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
