"""Each user's last sync attempts: what the retry sensor, ``analytics.data_health`` and ``polar-flow status``
read to tell "sync failing" from "watch not worn".

The raw assets record one outcome per user and run: a success (the user's main streams were fetched and
stored, and every record that came in was clean or quarantined before) or a failure with its reason (a
fetch that failed after the client's own retries, a rejected token, records quarantined on arrival). A
failed run that named no user (a mart step failed, the process died) is put on the run's users by the
``sync_retries`` sensor. Consecutive failures drive the retries: a user who failed ``n`` times in a row is
tried again ``base × 2^(n-1)`` after the last attempt, while ``n`` is at most the retry limit; past it the
user is shown as failed until a later sync (the daily refresh, a manual one) succeeds.

No Dagster import here: the API and the CLI read it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from polar_pipeline.control_store import ControlTables

MAX_ERROR_CHARS = 2000

SCHEMA = """
CREATE TABLE IF NOT EXISTS user_syncs (
    user_id TEXT PRIMARY KEY,
    last_attempt_at TEXT NOT NULL,
    last_run_id TEXT,
    last_success_at TEXT,
    last_error TEXT,
    last_failed_run_id TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failures_before_run INTEGER NOT NULL DEFAULT 0
);
"""
_COLUMNS = (
    "user_id, last_attempt_at, last_run_id, last_success_at, last_error, last_failed_run_id, "
    "consecutive_failures"
)


@dataclass(frozen=True)
class SyncAttempt:
    """What one run did for one user."""

    user_id: str
    run_id: str
    succeeded: bool
    error: str | None = None


@dataclass(frozen=True)
class UserSyncState:
    """A user's sync history in one row: the last attempt, the last success, the failures since."""

    user_id: str
    last_attempt_at: datetime
    last_run_id: str | None
    last_success_at: datetime | None
    last_error: str | None
    last_failed_run_id: str | None
    consecutive_failures: int

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0

    def retry_due_at(self, backoff: timedelta) -> datetime:
        """When the next retry may start: ``backoff × 2^(failures-1)`` after the last attempt."""
        factor = 1 << max(self.consecutive_failures - 1, 0)
        return self.last_attempt_at + backoff * factor

    def gave_up(self, retry_limit: int) -> bool:
        """Failed once and then in every one of ``retry_limit`` retries: no more automatic retries."""
        return self.consecutive_failures > retry_limit


def _parse(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def _row_to_state(row: Sequence[object]) -> UserSyncState:
    return UserSyncState(
        user_id=str(row[0]),
        last_attempt_at=datetime.fromisoformat(str(row[1])),
        last_run_id=None if row[2] is None else str(row[2]),
        last_success_at=_parse(None if row[3] is None else str(row[3])),
        last_error=None if row[4] is None else str(row[4]),
        last_failed_run_id=None if row[5] is None else str(row[5]),
        consecutive_failures=int(str(row[6])),
    )


class SyncOutcomes(ControlTables):
    """The ``user_syncs`` table of the control store."""

    SCHEMA = SCHEMA

    def record(self, attempts: Sequence[SyncAttempt], at: datetime) -> None:
        """Record a run's outcome for each user, in one transaction.

        Several raw assets of one run report on the same user: a failure in any of them makes the run a
        failure for that user, counted once, whatever order the assets report in.
        """
        stamp = at.isoformat()
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            for attempt in attempts:
                row = con.execute(
                    "SELECT last_run_id, last_failed_run_id, consecutive_failures, failures_before_run, "
                    "last_success_at, last_error FROM user_syncs WHERE user_id = ?",
                    (attempt.user_id,),
                ).fetchone()
                last_run, failed_run, failures, before, success_at, error = row or (
                    None,
                    None,
                    0,
                    0,
                    None,
                    None,
                )
                if last_run != attempt.run_id:  # the first report of this run: remember the count before it
                    before = failures
                if attempt.succeeded and failed_run == attempt.run_id:
                    continue  # another asset of this run failed for the user: that decides the run
                if attempt.succeeded:
                    success_at, failures = stamp, 0
                else:
                    error = (attempt.error or "sync failed")[:MAX_ERROR_CHARS]
                    failed_run, failures = attempt.run_id, int(before) + 1
                con.execute(
                    f"INSERT OR REPLACE INTO user_syncs ({_COLUMNS}, failures_before_run) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (attempt.user_id, stamp, attempt.run_id, success_at, error, failed_run, failures, before),
                )

    def states(self, users: Sequence[str] | None = None) -> dict[str, UserSyncState]:
        """Every user's row (or only ``users``'), by user id."""
        with self._connect() as con:
            if users is None:
                rows = con.execute(f"SELECT {_COLUMNS} FROM user_syncs").fetchall()
            else:
                marks = ", ".join("?" for _ in users)
                rows = con.execute(
                    f"SELECT {_COLUMNS} FROM user_syncs WHERE user_id IN ({marks})", tuple(users)
                ).fetchall()
        return {str(row[0]): _row_to_state(row) for row in rows}

    def failed_in_run(self, run_id: str) -> list[str]:
        """The users whose last failure was in ``run_id``."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT user_id FROM user_syncs WHERE last_failed_run_id = ? ORDER BY user_id", (run_id,)
            ).fetchall()
        return [str(row[0]) for row in rows]

    def forget(self, user_id: str) -> int:
        """Remove the user's row (user deletion)."""
        with self._connect() as con:
            return con.execute("DELETE FROM user_syncs WHERE user_id = ?", (user_id,)).rowcount
