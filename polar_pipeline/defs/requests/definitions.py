"""Requests: the sensor between the API's request queue (``polar_pipeline.sync_requests``) and the runs."""

import dagster as dg

from polar_pipeline.defs.requests.sensors import build_sync_requests_sensor
from polar_pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(sensors=[build_sync_requests_sensor(settings)])
