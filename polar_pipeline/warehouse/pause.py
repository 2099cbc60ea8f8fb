"""Crash-test seams: named points where a test can stop a process and kill it (``POLAR_DEBUG_PAUSE_AT``).

Kept apart from the writer so that readers (the API imports ``snapshot.py``) never load the writer.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from fnmatch import fnmatchcase

_armed_points: tuple[str, ...] = ()
_pause_seconds = 0.0


def arm_pause_points(patterns: Iterable[str], seconds: float) -> None:
    """Crash-test seam: stop this process ``seconds`` at every named point matching one of ``patterns``.

    Points (``fnmatch`` patterns match them): ``commit:<relation>`` just before a write transaction's
    COMMIT (``commit:*`` for all), ``replace:<relation>`` inside one, between a slice's DELETE and its
    INSERT, ``model:<relation>`` before a mart's transaction begins, and the phases of a publish
    (``publish:*``, see ``snapshot.py`` and ``samples.py``). A test arms them through
    ``POLAR_DEBUG_PAUSE_AT``, waits for the announcement on stderr and kills the process there. No patterns
    (the default): no pauses.
    """
    global _armed_points, _pause_seconds
    _armed_points = tuple(pattern for pattern in patterns if pattern)
    _pause_seconds = max(0.0, seconds)


def pause_point(name: str) -> None:
    """Announce ``name`` on stderr and sleep, if a crash test armed it; otherwise do nothing."""
    if _pause_seconds > 0 and any(fnmatchcase(name, pattern) for pattern in _armed_points):
        print(f"polar-flow: paused at {name} for {_pause_seconds:g} s", file=sys.stderr, flush=True)
        time.sleep(_pause_seconds)
