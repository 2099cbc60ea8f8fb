"""A persistent DAGSTER_HOME under POLAR_HOME, so users (dynamic partitions) and run history survive,
and the instance every CLI command and test opens on it."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from polar_pipeline.migrate import migrate_home
from polar_pipeline.orchestration.event_log import BATCH_SIZE_ENV
from polar_pipeline.settings import Settings

MARKER = "# Written by polar-flow"
DAGSTER_YAML = """\
{marker} (rewritten when it changes; remove this line to keep your own edits).
# The warehouse has exactly one writer: every asset touching DuckDB is in the "duckdb" pool,
# and each pool has one slot.
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 2
    tag_concurrency_limits:
      - key: dagster/backfill
        limit: 1
# Same SQLite files as the default, ~10x cheaper per event (see polar_pipeline/orchestration/event_log.py).
event_log_storage:
  module: polar_pipeline.orchestration.event_log
  class: FastSqliteEventLogStorage
  config:
    base_dir: {event_log_dir}
telemetry:
  enabled: false
"""


def prepare_dagster_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME (default ``$POLAR_HOME/dagster``) with our dagster.yaml and export it.

    An explicit DAGSTER_HOME (``Settings.dagster_home``) wins; a dagster.yaml without our marker is left
    alone. Dagster itself reads DAGSTER_HOME and DAGSTER_EVENT_BATCH_SIZE (the batch size of our event
    log, ``Settings.dagster_event_batch_size``) from the environment, hence the exports.
    """
    migrate_home(settings)  # an older POLAR_HOME gets the current layout before anything reads it
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = DAGSTER_YAML.format(marker=MARKER, event_log_dir=home / "history" / "runs")
    if not config.exists() or (config.read_text().startswith(MARKER) and config.read_text() != wanted):
        config.write_text(wanted)
    os.environ["DAGSTER_HOME"] = str(home)
    # Dagster reads these from the environment of every process that creates or executes runs; the ones
    # this process starts (dagster dev's webserver, daemon and run workers) inherit them.
    os.environ[BATCH_SIZE_ENV] = str(settings.dagster_event_batch_size)
    return home


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The Dagster instance on our DAGSTER_HOME (prepared first)."""
    prepare_dagster_home(settings)
    return dg.DagsterInstance.get()
