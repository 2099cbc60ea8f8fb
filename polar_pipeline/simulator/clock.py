"""The simulated clock: a UTC instant that is either frozen (tests, demo) or follows the wall clock.

The simulator's "local" zone for the clock is UTC: setting a date puts "now" at 12:00 UTC of that date, so the
``Date`` header (always rendered from this clock) names that date.
"""

from __future__ import annotations

import datetime as dt
import time

NOON = dt.time(12, 0)


class SimClock:
    """``now()`` = anchor + (wall time elapsed since anchoring) when running, else the anchor itself."""

    def __init__(self, today: dt.date | None) -> None:
        if today is None:
            self._anchor = dt.datetime.now(dt.UTC).replace(microsecond=0)
            self._running = True
        else:
            self._anchor = dt.datetime.combine(today, NOON, tzinfo=dt.UTC)
            self._running = False
        self._wall_anchor = time.monotonic()

    @property
    def running(self) -> bool:
        return self._running

    def now(self) -> dt.datetime:
        if not self._running:
            return self._anchor
        elapsed = dt.timedelta(seconds=time.monotonic() - self._wall_anchor)
        return self._anchor + elapsed

    def today(self) -> dt.date:
        return self.now().date()

    def set_today(self, day: dt.date) -> None:
        """Freeze the clock at 12:00 UTC of ``day``."""
        self._anchor = dt.datetime.combine(day, NOON, tzinfo=dt.UTC)
        self._running = False
        self._wall_anchor = time.monotonic()

    def advance_days(self, days: int) -> None:
        """Move by whole days, keeping the time of day and the running/frozen mode."""
        self._anchor = self.now() + dt.timedelta(days=days)
        self._wall_anchor = time.monotonic()
