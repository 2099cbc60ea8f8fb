"""Days a run changed raw records of but did not rebuild: the queue behind the ``late_records`` sensor.

A run rebuilds its own users × days. AccessLink hands out some records by upload time rather than by day
(``/v3/exercises`` lists whatever was uploaded in the last 30 days), so a workout uploaded late, or a day
re-sent with new values, can land in ``raw.*`` dated before the run's first day. Its marts would keep the old
answer until some later run happened to cover that day. So the raw assets record such days here, and the
``late_records`` sensor (``defs/refresh``) asks for one run per user of the derived assets over them and the
trailing windows after them, the way an import does.

No Dagster import here: the raw assets write it, the sensor reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime

from polar_pipeline.control_store import ControlTables

SCHEMA = """
CREATE TABLE IF NOT EXISTS late_days (
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    run_key TEXT,
    PRIMARY KEY (user_id, day)
);
"""


class LateDays(ControlTables):
    """The ``late_days`` table of the control store: per user, days waiting for a rebuild."""

    SCHEMA = SCHEMA

    def record(self, days: Mapping[str, Iterable[date]], at: datetime) -> int:
        """Queue these days (again, if an earlier rebuild was already asked for); returns how many."""
        stamp = at.isoformat()
        rows = [(user, day.isoformat(), stamp) for user, user_days in days.items() for day in user_days]
        with self._connect() as con:
            con.executemany(
                "INSERT INTO late_days (user_id, day, recorded_at, run_key) VALUES (?, ?, ?, NULL) "
                "ON CONFLICT (user_id, day) DO UPDATE SET recorded_at = excluded.recorded_at, run_key = NULL",
                rows,
            )
        return len(rows)

    def pending(self) -> dict[str, list[date]]:
        """Per user, the queued days no run was asked for yet, oldest first."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT user_id, day FROM late_days WHERE run_key IS NULL ORDER BY user_id, day"
            ).fetchall()
        pending: dict[str, list[date]] = {}
        for user_id, day in rows:
            pending.setdefault(str(user_id), []).append(date.fromisoformat(str(day)))
        return pending

    def mark_requested(self, user_id: str, days: Iterable[date], run_key: str) -> None:
        """Remember which run was asked for these days (a day queued again later is pending again)."""
        with self._connect() as con:
            con.executemany(
                "UPDATE late_days SET run_key = ? WHERE user_id = ? AND day = ? AND run_key IS NULL",
                [(run_key, user_id, day.isoformat()) for day in days],
            )
