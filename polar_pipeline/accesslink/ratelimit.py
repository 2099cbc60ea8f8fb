"""Client-side pacing from AccessLink's ``RateLimit-*`` headers (docs/accesslink.md §10).

Every response carries three comma pairs, ``short, long`` (15 min and 24 h on the real API)::

    RateLimit-Usage: 3, 10        requests used in the current windows
    RateLimit-Limit: 500, 5000    allowed per window
    RateLimit-Reset: 620, 86000   seconds until each window resets

The limit is per client application, shared by every user's sync, so the server's count is the truth:
each response replaces the local state, and requests sent since are counted locally. Before a request
that would leave fewer than ``margin`` requests spare in a window, the client sleeps until that window
resets, so a well-behaved client never meets the real limit's 429.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

RESET_SLACK_SECONDS = 0.05
"""Added to every advertised reset: the header is rounded and the server's clock ticks apart from ours."""


@dataclass
class _Window:
    limit: int
    used: int
    resets_at: float


def _pair(headers: Mapping[str, str], name: str) -> list[float] | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        values = [float(part) for part in raw.split(",")]
    except ValueError:
        return None
    return values if values and all(math.isfinite(value) and value >= 0 for value in values) else None


class RateLimiter:
    """Tracks the advertised windows and says how long to wait before the next request."""

    def __init__(self, clock: Callable[[], float], *, margin: int = 1) -> None:
        self._clock = clock
        self._margin = margin
        self._windows: list[_Window] = []

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adopt the server's usage, limits and resets (ignored when absent or inconsistent)."""
        usage = _pair(headers, "RateLimit-Usage")
        limits = _pair(headers, "RateLimit-Limit")
        resets = _pair(headers, "RateLimit-Reset")
        if usage is None or limits is None or resets is None or not len(usage) == len(limits) == len(resets):
            return
        now = self._clock()
        self._windows = [
            _Window(limit=int(limit), used=int(used), resets_at=now + reset + RESET_SLACK_SECONDS)
            for used, limit, reset in zip(usage, limits, resets, strict=True)
        ]

    def delay(self) -> float:
        """Seconds to sleep so that the next request stays ``margin`` below every window's limit."""
        now = self._clock()
        wait = 0.0
        for window in self._windows:
            allowed = max(1, window.limit - self._margin)
            if now < window.resets_at and window.used + 1 > allowed:
                wait = max(wait, window.resets_at - now)
        return wait

    def record_request(self) -> None:
        """Count a request about to be sent; a window whose reset has passed starts again from zero."""
        now = self._clock()
        for window in self._windows:
            if now >= window.resets_at:
                window.used = 0
            window.used += 1

    def exhausted_reset(self) -> float | None:
        """After a 429 without ``Retry-After``: seconds until the full window resets, if one is full."""
        now = self._clock()
        waits = [w.resets_at - now for w in self._windows if w.used >= w.limit and w.resets_at > now]
        return max(waits) if waits else None
