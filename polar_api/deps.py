"""Request-scoped dependencies: a private cursor on the current serving snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import duckdb
from fastapi import Depends, Path, Request, Response

from polar_pipeline.control_store import USER_ID_PATTERN
from polar_pipeline.warehouse.snapshot import SnapshotReader

GENERATION_HEADER = "X-Snapshot-Generation"
"""The serving generation that answered: every query of one request reads that one generation."""


def snapshot_cursor(request: Request, response: Response) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on the current generation, held for the whole request; the response names the generation.

    A generation published meanwhile does not change what this request reads; the next request gets it.
    """
    reader: SnapshotReader = request.app.state.reader
    with reader.cursor() as (cursor, info):
        response.headers[GENERATION_HEADER] = str(info.generation)
        yield cursor


SnapshotCursor = Annotated[duckdb.DuckDBPyConnection, Depends(snapshot_cursor)]
UserId = Annotated[str, Path(pattern=USER_ID_PATTERN.pattern, description="the user id (Polar user id)")]
