"""Giving freed memory back to the system while a long export is read.

glibc keeps memory a process freed in its arenas, ready for reuse; after thousands of parsed members (an
old-format session is megabytes of small JSON objects) that kept memory, not live data, was a good part of
a years-long import's peak RSS. ``malloc_trim`` returns it. Called after each written batch.
"""

from __future__ import annotations

import ctypes


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - present on glibc only
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_libc()


def release_freed_memory() -> None:
    """Hand memory freed so far back to the system; a no-op where there is no glibc."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
