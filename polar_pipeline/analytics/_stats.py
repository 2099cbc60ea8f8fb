"""Numeric helpers of the windowed analytics: the dense calendar as arrays, ranks with ties, BH q-values.

Everything here works on 2-D float arrays with one window per row and NaN for "no value", so a whole run
(all users × days) is one array operation instead of a loop over partitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import special

from polar_pipeline.analytics._common import IN_DAILY, dense_calendar

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Calendar:
    """Metrics on the dense user × calendar-day grid of ``_common.dense_calendar`` as arrays (NaN where a
    day or value is missing).

    Windows are calendar days (docs/methods.md §1.1), so the grid has a column for every date from
    ``start`` on, whether or not the user has a row that day; ``out_user``/``out_col`` are the
    (user, day) cells a result row is written for, in user-then-day order.
    """

    users: list[str]
    start: date
    values: dict[str, Floats]
    out_user: Ints
    out_col: Ints

    @classmethod
    def build(
        cls,
        daily: pl.DataFrame,
        metrics: Mapping[str, pl.Expr],
        first_day: date,
        last_day: date,
        lookback_days: int,
    ) -> Calendar:
        """Lay ``daily`` out over ``[first_day - lookback_days, last_day]``.

        ``metrics`` maps a grid name to a polars expression over the daily rows (cast to Float64). Output
        cells are the (user, day) rows of ``daily`` with ``first_day <= day <= last_day``; should a
        (user, day) appear twice, the row with the smallest values is kept, whatever the input order.
        """
        derived = daily.select(
            pl.col("user_id"),
            pl.col("day"),
            *[expr.cast(pl.Float64).alias(name) for name, expr in metrics.items()],
        )
        grid = dense_calendar(
            derived, dict.fromkeys(metrics, pl.Float64()), first_day, last_day, lookback_days
        )
        users = grid.get_column("user_id").unique(maintain_order=True).to_list()
        width = (last_day - first_day).days + lookback_days + 1
        values = {
            name: grid.get_column(name).to_numpy().astype(np.float64).reshape(len(users), width)
            for name in metrics
        }
        out = np.flatnonzero((grid.get_column(IN_DAILY) & (grid.get_column("day") >= first_day)).to_numpy())
        return cls(users, first_day - timedelta(days=lookback_days), values, out // width, out % width)

    def out_days(self) -> pl.Series:
        """The output cells' days as a polars Date series."""
        epoch_offset = (self.start - EPOCH).days
        return pl.Series("day", self.out_col + epoch_offset, dtype=pl.Int32).cast(pl.Date)

    def out_user_ids(self) -> pl.Series:
        """The output cells' user ids as a polars String series."""
        return pl.Series("user_id", self.users, dtype=pl.String).gather(pl.Series(self.out_user))

    def windows(self, metric: str, end_offset: int, length: int) -> Floats:
        """One row per output cell: ``metric`` on the ``length`` days ending ``end_offset`` days after it.

        Row r, column k holds the value of day ``out_day[r] + end_offset - length + 1 + k``; days before
        the grid (never needed when the caller's look-back fits) read as NaN.
        """
        grid = self.values[metric]
        cols = self.out_col[:, None] + (end_offset - length + 1) + np.arange(length)[None, :]
        inside = cols >= 0
        picked = grid[self.out_user[:, None], np.where(inside, cols, 0)]
        return np.ascontiguousarray(np.where(inside, picked, np.nan))


def _sorted_ties(windows: Floats) -> tuple[Ints, Ints, Ints]:
    """Sort each row (NaN last) and give every sorted position its tie group's first and last position."""
    order = np.argsort(windows, axis=1, kind="stable")
    ordered = np.take_along_axis(windows, order, axis=1)
    width = windows.shape[1]
    position = np.broadcast_to(np.arange(width), windows.shape)
    differs = ordered[:, 1:] != ordered[:, :-1]
    starts_group = np.concatenate([np.ones((windows.shape[0], 1), dtype=bool), differs], axis=1)
    ends_group = np.concatenate([differs, np.ones((windows.shape[0], 1), dtype=bool)], axis=1)
    first = np.maximum.accumulate(np.where(starts_group, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends_group, position, width - 1)[:, ::-1], axis=1)[:, ::-1]
    return order, first, last


def average_ranks(windows: Floats) -> Floats:
    """Ranks 1..n within each row, ties sharing their average rank (scipy's ``rankdata``); NaN stays NaN."""
    order, first, last = _sorted_ties(windows)
    ranks = np.empty_like(windows)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return np.where(np.isnan(windows), np.nan, ranks)


def tie_sizes(windows: Floats) -> Floats:
    """For every value the size of its tie group within its row (1 when unique); 0 for NaN."""
    order, first, last = _sorted_ties(windows)
    sizes = np.empty_like(windows)
    np.put_along_axis(sizes, order, (last - first + 1).astype(np.float64), axis=1)
    return np.where(np.isnan(windows), 0.0, sizes)


def lag1_autocorrelation(centred: Floats, present: Floats, sum_squares: Floats, n: Floats) -> Floats:
    """Lag-1 autocorrelation of a row of centred values with gaps, in [-1, 1].

    The mean product over calendar-adjacent present days divided by the mean square over all present
    days (the usual estimator, averaged over the couples that exist so gaps do not bias it towards 0);
    ``centred`` is 0 and ``present`` 0 on missing days. 0 when no two present days are adjacent.
    """
    couples = np.sum(present[:, 1:] * present[:, :-1], axis=1)
    products = np.sum(centred[:, 1:] * centred[:, :-1], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = (products / couples) / (sum_squares / n)
    return np.clip(np.where((couples > 0) & (sum_squares > 0), r1, 0.0), -1.0, 1.0)


def t_test_p(r: Floats, df: Floats) -> Floats:
    """Two-sided p of a correlation r with ``df`` degrees of freedom: t = r √(df / (1 − r²)), Student t.

    |r| = 1 gives p = 0; NaN in either input gives NaN.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(r) * np.sqrt(df / (1.0 - r * r))
    t = np.where(np.abs(r) >= 1.0, np.inf, t)
    p: Floats = 2.0 * special.stdtr(df, -t)
    return np.where(np.isnan(r) | np.isnan(df), np.nan, p)


def benjamini_hochberg(p: Floats) -> Floats:
    """Benjamini–Hochberg q-values within each row (one family per row); NaN p are not hypotheses.

    q_(i) = min over j ≥ i of m p_(j) / j, capped at 1, with m the row's count of non-NaN p: the same
    numbers as ``scipy.stats.false_discovery_control(p, method="bh")`` on the row's non-NaN values.
    """
    rows, width = p.shape
    order = np.argsort(p, axis=1, kind="stable")
    ordered = np.take_along_axis(p, order, axis=1)
    m = np.sum(~np.isnan(p), axis=1, keepdims=True).astype(np.float64)
    rank = np.arange(1, width + 1, dtype=np.float64)[None, :]
    scaled = np.where(np.isnan(ordered), np.inf, ordered * (m / rank))
    q_sorted = np.minimum(np.minimum.accumulate(scaled[:, ::-1], axis=1)[:, ::-1], 1.0)
    q = np.empty((rows, width))
    np.put_along_axis(q, order, q_sorted, axis=1)
    return np.where(np.isnan(p), np.nan, q)


def row_blocks(rows: int, cells_per_row: int, budget: int = 4_000_000) -> list[slice]:
    """Split ``rows`` into blocks of at most ``budget`` cells, so a year × many users stays in memory."""
    size = max(1, budget // max(1, cells_per_row))
    return [slice(i, min(rows, i + size)) for i in range(0, rows, size)] or [slice(0, 0)]
