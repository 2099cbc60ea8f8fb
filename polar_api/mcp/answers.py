"""What every tool answer carries besides its data: whose it is, how current it is, and a plain note.

A tool reads one generation of the serving snapshot for its whole call (``reading``), exactly as a REST
request does, so a publish during the call changes nothing it returns. Its answer says which generation and
how old it is, the user's own "today" (their time zone, ``polar_api.deps.local_today``), the newest day of
the data it returned, and the user's newest day of any synced data. ``note`` puts in words what a model
must not miss: the snapshot knows nothing of the user, the window holds no data (an empty list is not a
list of zeros), or the data is stale (its newest day is more than ``STALE_AFTER_DAYS`` before today).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from polar_api.deps import local_today, per_generation
from polar_api.read.users import newest_days
from polar_pipeline import clock
from polar_pipeline.settings import Settings
from polar_pipeline.sync_requests import SyncRequestQueue
from polar_pipeline.warehouse.snapshot import SnapshotInfo, SnapshotNotPublished, SnapshotReader

STALE_AFTER_DAYS = 2
"""Data whose newest day is more than this many days before the user's today is called stale."""


@dataclass
class McpRuntime:
    """What the tools read: the settings, the snapshot reader, the sync request queue."""

    settings: Settings
    reader: SnapshotReader
    _requests: SyncRequestQueue | None = None

    @property
    def requests(self) -> SyncRequestQueue:
        """The control store's request queue, opened on first use (its table is created then)."""
        if self._requests is None:
            self._requests = SyncRequestQueue(self.settings.control_store_path)
        return self._requests


class Freshness(BaseModel):
    """How current an answer is; every tool answer starts with these fields."""

    user_id: str = Field(description="the user the answer is about")
    user_today: date = Field(
        description="the user's local date now (their own time zone); every 'days' window ends on it"
    )
    latest_data_day: date | None = Field(
        description="the newest local date among the data this answer holds; null when it holds none"
    )
    newest_synced_day: date | None = Field(
        description="the user's newest day with any synced record of any kind; null when the snapshot has "
        "none (never synced, or not published yet)"
    )
    snapshot_generation: int | None = Field(
        description="the serving snapshot generation every number here was read from (null: none published)"
    )
    snapshot_age_seconds: float | None = Field(
        description="seconds since that snapshot was published (a new one follows each sync)"
    )
    note: str | None = Field(
        description="a plain sentence when something must not be missed: no data for the user or in the "
        f"window, or data older than {STALE_AFTER_DAYS} days; null when the data is current"
    )


def _known_days(cursor: duckdb.DuckDBPyConnection) -> dict[str, date]:
    days: dict[str, date] = per_generation(cursor, "newest_days", newest_days)
    return days


@dataclass
class Reading:
    """One tool call's view: a cursor on one generation, the user, their today and newest day."""

    cursor: duckdb.DuckDBPyConnection
    info: SnapshotInfo
    user_id: str
    today: date
    newest_day: date | None

    def newest_of_any_user(self) -> date | None:
        """The newest day with any synced record of any user (what an admin's SQL could see)."""
        return max(_known_days(self.cursor).values(), default=None)

    def window(self, days: int) -> tuple[date, date]:
        """The local dates today - days … today, both included: the REST routes' ``days`` window."""
        return self.today - timedelta(days=days), self.today

    def freshness(
        self,
        what: str,
        data_days: Iterable[date | None],
        window: tuple[date, date] | None = None,
        *,
        sparse: bool = False,
    ) -> dict[str, Any]:
        """The ``Freshness`` fields of an answer holding ``what`` on ``data_days``.

        ``sparse``: the data need not exist every day (workouts, flagged days), so an old newest day of it
        is not stale by itself; the user's newest synced day still is.
        """
        latest = max((day for day in data_days if day is not None), default=None)
        return {
            "user_id": self.user_id,
            "user_today": self.today,
            "latest_data_day": latest,
            "newest_synced_day": self.newest_day,
            "snapshot_generation": self.info.generation,
            "snapshot_age_seconds": round(self.info.age_seconds(), 3),
            "note": self._note(what, latest, window, sparse),
        }

    def _note(
        self, what: str, latest: date | None, window: tuple[date, date] | None, sparse: bool
    ) -> str | None:
        if self.newest_day is None:
            return (
                f"the serving snapshot holds no data for user {self.user_id}: not synced yet, or synced "
                "after the last publish"
            )
        notes = []
        if latest is None:
            where = f" on the local dates {window[0]} to {window[1]}" if window else ""
            notes.append(f"no {what} for user {self.user_id}{where}: nothing was recorded or synced there")
        lag = (self.today - self.newest_day).days
        if lag > STALE_AFTER_DAYS:
            notes.append(
                f"stale: the user's newest synced data of any kind is from {self.newest_day}, {lag} days "
                f"before their today ({self.today}); a sync may be overdue (trigger_sync)"
            )
        elif latest is not None and not sparse and (self.today - latest).days > STALE_AFTER_DAYS:
            notes.append(
                f"the newest {what} is from {latest}, {(self.today - latest).days} days before the user's "
                f"today ({self.today}), although newer data of other kinds exists"
            )
        return "; ".join(notes) + "." if notes else None


def _reading(
    runtime: McpRuntime, cursor: duckdb.DuckDBPyConnection, info: SnapshotInfo, user_id: str
) -> Reading:
    return Reading(
        cursor=cursor,
        info=info,
        user_id=user_id,
        today=local_today(runtime.settings, cursor, user_id),
        newest_day=_known_days(cursor).get(user_id),
    )


@contextmanager
def reading_if_published(runtime: McpRuntime, user_id: str) -> Iterator[Reading | None]:
    """A ``Reading`` of ``user_id`` on the current generation, held for the whole call; None before the
    first publish."""
    with ExitStack() as stack:
        try:
            cursor, info = stack.enter_context(runtime.reader.cursor())
        except SnapshotNotPublished:
            yield None
            return
        yield _reading(runtime, cursor, info, user_id)


@contextmanager
def reading(runtime: McpRuntime, user_id: str) -> Iterator[Reading]:
    """``reading_if_published``, where nothing published yet is a tool error: no tool has anything to say."""
    with reading_if_published(runtime, user_id) as current:
        if current is None:
            raise ToolError(
                "no serving snapshot has been published yet: sync a user (polar-flow sync) and publish first"
            )
        yield current


def unpublished_freshness(runtime: McpRuntime, user_id: str, what: str) -> dict[str, Any]:
    """The ``Freshness`` fields when no snapshot exists (only the sync tools answer then)."""
    return {
        "user_id": user_id,
        "user_today": clock.today(runtime.settings),
        "latest_data_day": None,
        "newest_synced_day": None,
        "snapshot_generation": None,
        "snapshot_age_seconds": None,
        "note": f"no serving snapshot has been published yet, so no {what} can be read",
    }
