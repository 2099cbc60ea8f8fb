"""Checksums of mart contents, for the refactoring guard: identical rows give identical digests.

Signed zeros are folded (-0.0 and 0.0 are the same value; DuckDB keeps the sign the payload wrote on some
paths and not on others) and floats are compared by their exact repr, so any other change shows.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import duckdb


def _fold(value: Any) -> Any:
    return 0.0 if isinstance(value, float) and value == 0 and math.copysign(1, value) < 0 else value


def table_checksum(con: duckdb.DuckDBPyConnection, relation: str, columns: Sequence[str]) -> tuple[int, str]:
    """(row count, sha256) of ``columns`` of ``relation``, rows in a total order."""
    rows = con.execute(f"SELECT {', '.join(columns)} FROM {relation} ORDER BY ALL").fetchall()
    folded = [tuple(_fold(value) for value in row) for row in rows]
    return len(folded), hashlib.sha256(repr(folded).encode()).hexdigest()
