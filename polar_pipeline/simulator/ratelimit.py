"""AccessLink-style rate limits (docs/accesslink.md §10): a short and a long fixed wall-clock window."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    short_limit: int
    short_window_seconds: float
    long_limit: int
    long_window_seconds: float


@dataclass(frozen=True)
class RateLimitState:
    """What the ``RateLimit-*`` headers report: ``short, long`` pairs."""

    short_usage: int
    long_usage: int
    limits: Limits
    short_reset_seconds: int
    long_reset_seconds: int

    @property
    def exceeded(self) -> bool:
        return self.short_usage >= self.limits.short_limit or self.long_usage >= self.limits.long_limit

    @property
    def retry_after_seconds(self) -> int:
        waits = []
        if self.short_usage >= self.limits.short_limit:
            waits.append(self.short_reset_seconds)
        if self.long_usage >= self.limits.long_limit:
            waits.append(self.long_reset_seconds)
        return max(waits, default=0)

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("RateLimit-Usage", f"{self.short_usage}, {self.long_usage}"),
            ("RateLimit-Limit", f"{self.limits.short_limit}, {self.limits.long_limit}"),
            ("RateLimit-Reset", f"{self.short_reset_seconds}, {self.long_reset_seconds}"),
        ]


class _FixedWindow:
    def __init__(self) -> None:
        self.index = -1
        self.count = 0
        self.max_count = 0

    def roll(self, elapsed: float, seconds: float) -> None:
        index = int(elapsed // seconds)
        if index != self.index:
            self.index = index
            self.count = 0

    def reset_seconds(self, elapsed: float, seconds: float) -> int:
        return max(1, math.ceil((self.index + 1) * seconds - elapsed))


class RateLimiter:
    """Counts served requests in windows aligned to the simulator's start; rejected ones are not counted."""

    def __init__(self) -> None:
        self._origin = time.monotonic()
        self._short = _FixedWindow()
        self._long = _FixedWindow()

    def state(self, limits: Limits) -> RateLimitState:
        elapsed = time.monotonic() - self._origin
        self._short.roll(elapsed, limits.short_window_seconds)
        self._long.roll(elapsed, limits.long_window_seconds)
        return RateLimitState(
            short_usage=self._short.count,
            long_usage=self._long.count,
            limits=limits,
            short_reset_seconds=self._short.reset_seconds(elapsed, limits.short_window_seconds),
            long_reset_seconds=self._long.reset_seconds(elapsed, limits.long_window_seconds),
        )

    def count_served(self, limits: Limits) -> None:
        self.state(limits)
        for window in (self._short, self._long):
            window.count += 1
            window.max_count = max(window.max_count, window.count)

    @property
    def max_in_short_window(self) -> int:
        return self._short.max_count

    @property
    def max_in_long_window(self) -> int:
        return self._long.max_count

    def restart(self) -> None:
        """Start fresh windows now (used by ``POST /sim/stats/reset`` so the maxima describe one run)."""
        self._origin = time.monotonic()
        self._short = _FixedWindow()
        self._long = _FixedWindow()
