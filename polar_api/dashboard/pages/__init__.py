"""The dashboard's pages: one builder each, from the read layer (``polar_api.read``) to a ``PageData``.

A builder gets a cursor on the serving snapshot and the request's context, and returns everything its page
shows; it never opens a connection, and never reads the warehouse or Dagster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from polar_api.dashboard.model import PageData
from polar_api.dashboard.pages import health, hrv, patterns, sleep, today, training
from polar_api.dashboard.pages.common import PageContext

Builder = Callable[[duckdb.DuckDBPyConnection, PageContext], PageData]


@dataclass(frozen=True)
class Page:
    """A page: its path segment, its titles, what it is for, whether a range applies, and its builder."""

    slug: str
    title: str
    nav_label: str
    intro: str
    build: Builder
    ranged: bool = True


PAGES: dict[str, Page] = {
    page.slug: page
    for page in (
        Page(
            today.SLUG,
            today.TITLE,
            "Today",
            "How recovered you are this morning, and why, against your own usual nights.",
            today.build,
        ),
        Page(
            hrv.SLUG,
            hrv.TITLE,
            "HRV & heart rate",
            "Night by night: heart-rate variability and overnight heart rate against your baselines.",
            hrv.build,
        ),
        Page(sleep.SLUG, sleep.TITLE, "Sleep", "Sleep stages, sleep score and sleep debt.", sleep.build),
        Page(
            training.SLUG,
            training.TITLE,
            "Training",
            "Training load, how this week compares with the last four, and your workouts.",
            training.build,
        ),
        Page(
            patterns.SLUG,
            patterns.TITLE,
            "Patterns",
            "What moves together, and what is changing: statistics over the last 30 and 90 days.",
            patterns.build,
            ranged=False,
        ),
        Page(
            health.SLUG,
            health.TITLE,
            "Data health",
            "Whether data is arriving, which days are missing, and what was kept out and why.",
            health.build,
        ),
    )
}
"""Every page, in navigation order."""
DEFAULT_PAGE = today.SLUG
