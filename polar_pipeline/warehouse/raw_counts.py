"""What a write of raw records did, as plain data.

Kept apart from ``raw_store`` (DuckDB, polars) so a process that only reports the counts, such as the
import's parent while its children read and rebuild, does not load those libraries to unpickle them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class StoredCounts:
    """What one write of raw batches did to the warehouse."""

    received: int
    changed: int
    quarantined: int
    requests: int
    users: tuple[str, ...] = field(default=())
    first_quarantined: dict[str, list[str]] = field(default_factory=dict)
    """Per user, the reasons of the records quarantined for the first time by this write."""
    changed_days: dict[str, list[date]] = field(default_factory=dict)
    """Per user, the days of the records this write inserted or changed (sorted, once each)."""
