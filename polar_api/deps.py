"""Request-scoped dependencies: a private cursor on the current serving snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import duckdb
from fastapi import Depends, Path, Request

from polar_pipeline.control_store import USER_ID_PATTERN
from polar_pipeline.warehouse.snapshot import SnapshotReader


def snapshot_cursor(request: Request) -> Iterator[duckdb.DuckDBPyConnection]:
    reader: SnapshotReader = request.app.state.reader
    with reader.cursor() as (cursor, _info):
        yield cursor


SnapshotCursor = Annotated[duckdb.DuckDBPyConnection, Depends(snapshot_cursor)]
UserId = Annotated[str, Path(pattern=USER_ID_PATTERN.pattern, description="the user id (Polar user id)")]
