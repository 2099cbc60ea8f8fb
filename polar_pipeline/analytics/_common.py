"""Helpers shared by every analytics module: the dense user × day calendar, joins of marts rows onto it,
trailing-window sums by fixed shifts, linear ramps, JSON columns and the output rows.

Every helper is a polars expression or a whole-frame operation, so a run is one vectorised pass over all
users and days. Windows are calendar days (docs/methods.md §1.1): the calendar has a row for every date of
the run's range, so ``shift(k)`` over the user is "k calendar days earlier" and never a row count. Output
rows are the (user, day) rows of marts.daily_metrics, whatever the slice (``IN_DAILY``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta

import polars as pl

KEY: tuple[str, str] = ("user_id", "day")


IN_DAILY = "_in_daily"
"""``dense_calendar``'s flag for the (user, day) rows of marts.daily_metrics: the only days given output rows,
so a slice whose edge falls in a gap writes the same rows as a run over the whole history."""

READY = "ready"
"""The marts.baselines status a signal needs before it counts (n >= 21 days in the window, §4.5)."""


def read_range(
    frame: pl.DataFrame, columns: Mapping[str, pl.DataType], first_day: date, last_day: date, lookback: int
) -> pl.DataFrame:
    """The (user_id, day) rows of ``frame`` in ``[first_day - lookback, last_day]`` with ``columns`` cast.

    Rows after ``last_day`` are dropped (they are the future for every output row) and so are rows before
    the look-back (no window reaches them), so passing a wider frame never changes a result. Duplicate keys
    keep their first row after sorting, which makes the choice deterministic.
    """
    start = first_day - timedelta(days=lookback)
    return (
        frame.lazy()
        .select(
            pl.col("user_id").cast(pl.String),
            pl.col("day").cast(pl.Date),
            *[pl.col(name).cast(dtype) for name, dtype in columns.items()],
        )
        .filter(pl.col("day").is_between(start, last_day))
        .sort(*KEY, *columns, nulls_last=True)
        .unique(subset=list(KEY), keep="first", maintain_order=True)
        .collect()
    )


def dense_calendar(
    daily: pl.DataFrame, columns: Mapping[str, pl.DataType], first_day: date, last_day: date, lookback: int
) -> pl.DataFrame:
    """Every calendar day of ``[first_day - lookback, last_day]`` for every user of ``daily`` in that range.

    The one dense user × day grid of the analytics: ``daily``'s ``columns`` (``read_range``) left-joined
    onto it, NULL on a day without a row, and ``IN_DAILY`` true where the (user, day) has a
    marts.daily_metrics row. Every user spans the same dates, sorted by user and day, so trailing windows
    are ``shift(k).over("user_id")`` and the grid reshapes to a users × days array (``_stats.Calendar``).
    """
    rows = read_range(daily, columns, first_day, last_day, lookback).with_columns(
        pl.lit(True).alias(IN_DAILY)
    )
    users = rows.select("user_id").unique().sort("user_id")
    days = pl.date_range(first_day - timedelta(days=lookback), last_day, eager=True).alias("day").to_frame()
    return (
        users.join(days, how="cross")
        .join(rows, on=list(KEY), how="left")
        .with_columns(pl.col(IN_DAILY).fill_null(False))
        .sort(*KEY)
    )


def join_on_day(calendar: pl.DataFrame, rows: pl.DataFrame, *, shift_days: int = 0) -> pl.DataFrame:
    """Left-join ``rows`` (keyed by user_id, day) onto ``calendar``; with ``shift_days`` = s, the row of
    day ``d - s`` lands on day ``d`` (the row of an earlier day, never a later one when s >= 0)."""
    if shift_days:
        rows = rows.with_columns(pl.col("day") + pl.duration(days=shift_days))
    return calendar.join(rows, on=list(KEY), how="left").sort(*KEY)


def wide_baselines(
    baselines: pl.DataFrame, metrics: Mapping[str, str], columns: Sequence[str]
) -> pl.DataFrame:
    """marts.baselines rows (one per user, day, metric) as one row per user and day.

    ``metrics`` maps a metric to the prefix of its columns: {"ln_rmssd": "hrv"} turns the ln_rmssd row's
    ``median`` into ``hrv_median``. Only ``columns`` of each metric are kept.
    """
    frames = []
    for metric, prefix in metrics.items():
        frames.append(
            baselines.filter(pl.col("metric") == metric).select(
                pl.col("user_id").cast(pl.String),
                pl.col("day").cast(pl.Date),
                *[pl.col(column).alias(f"{prefix}_{column}") for column in columns],
            )
        )
    wide = frames[0].unique(subset=list(KEY), keep="first", maintain_order=True)
    for frame in frames[1:]:
        frame = frame.unique(subset=list(KEY), keep="first", maintain_order=True)
        wide = wide.join(frame, on=list(KEY), how="full", coalesce=True)
    return wide


def trailing_sum(column: str, days: int) -> tuple[pl.Expr, pl.Expr]:
    """(sum, count) of the non-NULL values of ``column`` over the ``days`` calendar days ending on the row.

    The sum adds the days in one fixed order (the day itself, then one day back, ...), so any slice that
    holds the window recomputes the same bits; a rolling sum that adds and subtracts as it slides would
    depend on where the slice started (docs/methods.md §1.6 makes the same choice in SQL).
    """
    total: pl.Expr = pl.lit(0.0)
    count: pl.Expr = pl.lit(0, dtype=pl.Int64)
    for k in range(days):
        value = pl.col(column).shift(k).over("user_id")
        total = total + value.fill_null(0.0)
        count = count + value.is_not_null().cast(pl.Int64)
    return total, count


def ramp(value: pl.Expr, start: float, full: float) -> pl.Expr:
    """0 at ``start``, 1 at ``full`` and beyond, linear in between (either direction); NULL stays NULL."""
    return ((value - start) / (full - start)).clip(0.0, 1.0)


def json_array(objects: Iterable[pl.Expr]) -> pl.Expr:
    """A String column holding a JSON array of one object per struct expression, in the given order."""
    parts: list[pl.Expr] = [pl.lit("[")]
    for index, struct in enumerate(objects):
        if index:
            parts.append(pl.lit(","))
        parts.append(struct.struct.json_encode())
    parts.append(pl.lit("]"))
    return pl.concat_str(parts)


def output_rows(
    frame: pl.DataFrame, schema: Mapping[str, pl.DataType], first_day: date, last_day: date
) -> pl.DataFrame:
    """The rows of ``[first_day, last_day]`` that have a marts.daily_metrics row (``IN_DAILY``), by user and
    day, with exactly ``schema``'s columns and types."""
    return (
        frame.filter(pl.col(IN_DAILY) & pl.col("day").is_between(first_day, last_day))
        .sort(*KEY)
        .select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
    )
