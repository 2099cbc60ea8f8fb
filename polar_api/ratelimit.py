"""Per-key rate limit of the API: a fixed one-minute window per key, shared by every worker process.

The counters live in a small SQLite file of their own (``Settings.rate_limit_path``), not in the control
store: the API notices revoked keys by the control store's ``PRAGMA data_version``, which any commit to
that file changes, so counting there would empty every worker's key cache on every request. Each request is
one atomic ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` on one row per key, so several uvicorn workers
count together exactly, with no read-modify-write race. ``synchronous=OFF``: a crash may lose the last
counts, which only lets a few more requests through.

``RateLimitHeaders`` puts ``X-RateLimit-*`` on every response of a key-authenticated request, including
the errors a route raises after ``authorize`` counted it (404, 422 …), which a dependency's ``Response``
object would not reach.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WINDOW_SECONDS = 60
QUOTA_STATE = "rate_limit_quota"
"""Where ``authorize`` leaves the request's ``Quota`` in ``request.state`` for ``RateLimitHeaders``."""
WORKER_HEADER = "X-Worker-Pid"

SCHEMA = """
CREATE TABLE IF NOT EXISTS request_counts (
    key_id TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL
) WITHOUT ROWID
"""
# A request in a newer window starts the count again; one from an older window (a worker whose clock read
# came a moment earlier) counts in the stored, newer one, so the window never moves backwards.
COUNT_REQUEST = """
INSERT INTO request_counts (key_id, window_start, count) VALUES (?, ?, 1)
ON CONFLICT (key_id) DO UPDATE SET
    count = CASE WHEN excluded.window_start > request_counts.window_start THEN 1
                 ELSE request_counts.count + 1 END,
    window_start = max(request_counts.window_start, excluded.window_start)
RETURNING count, window_start
"""


@dataclass(frozen=True)
class Quota:
    """Where one key stands in its window after this request was counted."""

    limit: int
    used: int
    reset_at: int
    """Unix seconds when the window ends and the count starts again."""
    retry_after: int
    """Whole seconds until ``reset_at`` (at least 1)."""

    @property
    def allowed(self) -> bool:
        return self.used <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


class RateLimiter:
    """Counts each key's requests per fixed window in one SQLite file shared by the worker processes."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        # One long-lived connection per process; autocommit, so each upsert is its own short transaction.
        self._con = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=OFF")
        self._con.execute(SCHEMA)
        self._lock = threading.Lock()

    def hit(self, key_id: str, limit: int) -> Quota:
        """Count one request of ``key_id`` and say whether it is within ``limit`` per window."""
        now = self.clock()
        window_start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        with self._lock:
            # fetchall steps the statement to its end, which commits it and releases the write lock.
            ((used, stored_window),) = self._con.execute(COUNT_REQUEST, (key_id, window_start)).fetchall()
        reset_at = int(stored_window) + WINDOW_SECONDS
        return Quota(
            limit=limit,
            used=int(used),
            reset_at=reset_at,
            retry_after=max(1, math.ceil(reset_at - now)),
        )

    def close(self) -> None:
        self._con.close()


class RateLimitHeaders:
    """ASGI middleware: the request's quota as ``X-RateLimit-*`` headers on whatever response goes out.

    With ``worker_header`` it also names the worker process (``X-Worker-Pid``), for tests that must see
    several workers answer.
    """

    def __init__(self, app: ASGIApp, *, worker_header: bool = False) -> None:
        self.app = app
        self.worker_header = worker_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                quota = scope.get("state", {}).get(QUOTA_STATE)
                if quota is not None or self.worker_header:
                    headers = MutableHeaders(scope=message)
                    if quota is not None:
                        headers.update(quota.headers())
                    if self.worker_header:
                        headers[WORKER_HEADER] = str(os.getpid())
            await send(message)

        await self.app(scope, receive, send_with_headers)
