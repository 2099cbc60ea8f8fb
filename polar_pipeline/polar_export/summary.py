"""What storing an export did, as plain data.

Kept apart from the importer (DuckDB, polars, pyarrow) so the import's parent process can unpickle what its
reading child returns without loading those libraries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from polar_pipeline.warehouse.raw_counts import StoredCounts


@dataclass(frozen=True)
class ImportSummary:
    """What storing an export did, per raw stream, plus the skipped families and the days imported."""

    stored: dict[str, StoredCounts]
    skipped: dict[str, int]
    days: frozenset[date]
    json_bytes: int = 0
    """Bytes of JSON members read and parsed (the skipped families not counted)."""

    @property
    def first_day(self) -> date | None:
        return min(self.days, default=None)

    @property
    def last_day(self) -> date | None:
        return max(self.days, default=None)

    @property
    def changed(self) -> int:
        return sum(counts.changed for counts in self.stored.values())

    @property
    def quarantined(self) -> int:
        return sum(counts.quarantined for counts in self.stored.values())
