"""Shared by the analytics read modules: finite-or-null numbers, and the objects inside the JSON columns.

DuckDB doubles and the analytics tables' JSON columns can carry NaN or infinities (a ratio over a zero, a
statistic of constant values); JSON has no such numbers, so every float the analytics routes return is typed
``Finite``: NaN and ±inf become null on the way into the model, and the OpenAPI schema says "number or null".

The JSON columns of ``analytics.risk`` (``factors``), ``analytics.recovery`` (``contributors``) and
``analytics.illness_watch`` (``signals``) are arrays of objects with fixed keys (docs/methods.md §11, §12,
§14); their models are here because ``/patterns``, ``/insights`` and the per-table routes all return them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Annotated, Any

import duckdb
from pydantic import BaseModel, BeforeValidator, ConfigDict

from polar_api.read.rows import fetch_dicts


def finite_or_none(value: Any) -> Any:
    """NaN and ±inf as None; anything else unchanged (pydantic then checks it is a number)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


Finite = Annotated[float | None, BeforeValidator(finite_or_none)]
"""A float that is null when missing, NaN or infinite."""


def fetch_computed(
    cursor: duckdb.DuckDBPyConnection, query: str, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``fetch_dicts``, or [] when a table the query reads is not in the snapshot (published before the
    analytics or a mart existed): for the reader that is "not computed yet", not a server error."""
    try:
        return fetch_dicts(cursor, query, params)
    except duckdb.CatalogException:
        return []


def json_array(text: str | None) -> list[dict[str, Any]]:
    """A precomputed JSON column holding an array of objects, parsed; [] when NULL or empty."""
    if not text:
        return []
    parsed = json.loads(text)
    return [item for item in parsed if isinstance(item, dict)] if isinstance(parsed, list) else []


class JsonObject(BaseModel):
    """An object read from a JSON column: exactly the keys the pipeline writes, no others."""

    model_config = ConfigDict(extra="forbid")


class RiskFactor(JsonObject):
    """One factor of ``analytics.risk.factors`` (docs/methods.md §11): its value, ramp and points."""

    name: str
    available: bool
    value: Finite
    unit: str
    threshold: Finite
    full_at: Finite
    weight: Finite
    points: Finite
    n: int | None
    heuristic: bool
    note: str | None


class RecoveryContributor(JsonObject):
    """One component of ``analytics.recovery.contributors`` (§12): the night's robust z vs its baseline."""

    name: str
    metric: str
    available: bool
    value: Finite
    baseline_median: Finite
    robust_sd: Finite
    z: Finite
    weight: Finite


class IllnessSignal(JsonObject):
    """One signal of ``analytics.illness_watch.signals`` (§14): z against the day's ready baseline."""

    metric: str
    value: Finite
    baseline_median: Finite
    robust_sd: Finite
    z: Finite
    threshold: Finite
    fired: bool
