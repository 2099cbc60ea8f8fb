"""Refresh: the daily schedule and the new-user and retry sensors (all on by default)."""

import dagster as dg

from polar_pipeline.defs.refresh.sensors import build_daily_refresh, build_sensors
from polar_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(schedules=[build_daily_refresh(settings)], sensors=build_sensors(settings))
