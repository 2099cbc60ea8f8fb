"""Rebuilding derived tables for days whose raw records changed outside a sync: an import, a late record.

Raw records of a day feed that day's marts and every trailing window that reaches it (rolling means,
baselines, load ratios: at most ``TRAILING_DAYS`` later). So a rebuild covers the changed days plus that
many days after them, clipped to the day axis and today, and runs only the derived assets (marts and
analytics): the raw ones would fetch from AccessLink again.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from polar_pipeline.settings import Settings

TRAILING_DAYS = 90
"""Days after the last changed one that are rebuilt too: the longest trailing window (baselines, load)."""


def rebuild_range(
    first: date | None, last: date | None, *, axis_start: date, today: date
) -> tuple[date, date] | None:
    """The changed days plus the trailing windows after them, clipped to the axis; None when none is left.

    Days before the axis start have no partitions, but the windows of the axis days after them read them."""
    if first is None or last is None:
        return None
    start = max(first, axis_start)
    end = min(last + timedelta(days=TRAILING_DAYS), today)
    return (start, end) if start <= end else None


def derived_asset_keys(settings: Settings) -> list[dg.AssetKey]:
    """The marts' and analytics' keys: what ``pipeline_job`` rebuilds from raw without fetching."""
    from polar_pipeline.defs.requests.sensors import ANALYTICS_KEYS
    from polar_pipeline.defs.transform.assets import table_keys
    from polar_pipeline.defs.transform.definitions import model_graph

    return [*table_keys(model_graph(settings)), *ANALYTICS_KEYS]
