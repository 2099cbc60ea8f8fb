"""Inbox: the ``inbox_imports`` sensor and the ``import_job`` it runs (on by default)."""

import dagster as dg

from polar_pipeline.defs.inbox.jobs import build_import_job
from polar_pipeline.defs.inbox.sensors import build_inbox_sensor
from polar_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(jobs=[build_import_job(settings)], sensors=[build_inbox_sensor(settings)])
