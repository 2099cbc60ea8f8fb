"""A throwaway in-memory Dagster instance that never becomes the thread's "current" one.

An entered instance installs its state storage as Dagster's current one until it is exited; one that is
never exited (say a module-scoped fixture torn down after other modules' tests, or a schedule context built
without ``with``) leaves later tests of the worker loading definitions against a disposed instance
("Attempted to resolve undefined DagsterInstance weakref"). An instance that is never entered cannot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg


@contextmanager
def ephemeral_instance() -> Iterator[dg.DagsterInstance]:
    instance = dg.DagsterInstance.ephemeral()
    try:
        yield instance
    finally:
        instance.dispose()
