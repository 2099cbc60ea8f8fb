"""Correlations and trends of the latest day: which pairs of metrics move together (with their lag and q
value), and which metrics are rising or falling, with what that means for the person (a rising resting heart
rate is bad). Both are statistics over fixed windows (90 days for correlations, 30 and 90 for trends) ending
on the latest day, so the page does not take a range."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from polar_api.dashboard.model import Card, Chart, PageData, Table, Trace
from polar_api.dashboard.pages.common import PageContext, envelope, metric_label, number
from polar_api.read.analytics_series import CorrelationRow, TrendRow, correlations, trends

SLUG, TITLE = "patterns", "Correlations and trends"
CHART_TREND_WINDOW = 30
DIRECTION_ARROWS = {"rising": "↑ rising", "falling": "↓ falling", "flat": "→ flat"}
POLARITY_TEXT = {"good": "good for you", "bad": "worth attention", "neutral": "neither good nor bad"}
EXTRA_LABELS = {"deep_sleep_share": "Deep sleep share"}


def _label(metric: str) -> str:
    return EXTRA_LABELS.get(metric) or metric_label(metric)


SLOPE_UNITS = {
    "ln_rmssd": (1.0, 3, "ln ms"), "overnight_hr_bpm": (1.0, 1, "bpm"), "sleep_score": (1.0, 1, "points"),
    "sleep_seconds": (1 / 60, 1, "min"), "steps": (1.0, 0, "steps"),
}  # fmt: skip
"""How a trend's weekly slope is written: (factor from the metric's unit, digits, unit)."""


def slope_text(metric: str, per_week: float | None) -> str:
    """The Theil–Sen slope per week in the metric's reading unit, signed: "+4.9 min", "−0.020 ln ms"."""
    if per_week is None:
        return "—"
    factor, digits, unit = SLOPE_UNITS.get(metric, (1.0, 2, ""))
    value = per_week * factor
    return (f"{value:+,.{digits}f}".replace("-", "−") + f" {unit}").strip()


def best_lags(rows: Sequence[CorrelationRow]) -> list[CorrelationRow]:
    """Each pair at its lag with the smallest q (missing q last, then the shortest lag), in pair order."""
    best: dict[tuple[str, str], CorrelationRow] = {}
    ranked = sorted(rows, key=lambda r: (r.q_value is None, r.q_value or 0.0, r.lag_days))
    for row in ranked:
        best.setdefault((row.x_metric, row.y_metric), row)
    return [best[pair] for pair in sorted(best)]


def pair_label(row: CorrelationRow) -> str:
    return f"{_label(row.x_metric)} → {_label(row.y_metric)}, +{row.lag_days} d"


def _trend_tone(row: TrendRow) -> str:
    return row.polarity if row.meaningful and row.polarity else "neutral"


TREND_TRACES = {"good": "Good trend", "bad": "Trend worth attention", "neutral": "No meaningful trend"}


def trend_chart(rows: Sequence[TrendRow]) -> Chart:
    """Each metric's 7-day against 30-day change, one trace per meaning: a trend that is meaningful is
    good or bad as its polarity says (a rising resting heart rate is bad), anything else neutral."""

    def of(tone: str) -> list[TrendRow]:
        return [row for row in rows if _trend_tone(row) == tone]

    return Chart(
        id="trends",
        title="Last 7 days against the last 30 days",
        summary=(
            "How far each metric's last-7-day mean is from its 30-day mean, in percent, coloured by what "
            "the 30-day trend means for you: a rising resting heart rate counts as bad."
        ),
        x_title="Metric",
        y_title="Change, 7-day vs 30-day mean (%)",
        x_kind="category",
        x=[_label(row.metric) for row in rows],
        traces=[
            Trace(
                name=name,
                kind="bar",
                style=f"trend-{tone}",
                x=[_label(row.metric) for row in of(tone)],
                y=[row.pct_change_7d_vs_30d for row in of(tone)],
                text=[DIRECTION_ARROWS.get(row.direction or "", "too few days") for row in of(tone)],
                unit="%",
            )
            for tone, name in TREND_TRACES.items()
        ],
    )


def build(cursor: duckdb.DuckDBPyConnection, context: PageContext) -> PageData:
    pairs = correlations(cursor, context.user_id)
    trend_rows = trends(cursor, context.user_id)
    best = best_lags(pairs)
    significant = [row for row in best if row.significant]
    as_of = pairs[0].day if pairs else trend_rows[0].day if trend_rows else None
    chart_trends = [row for row in trend_rows if row.window_days == CHART_TREND_WINDOW]
    meaningful = [row for row in chart_trends if row.meaningful]

    page = envelope(SLUG, TITLE, context, as_of)
    page.cards = [
        Card(
            label="Significant pairs",
            value=f"{len(significant)} of {len(best)}",
            detail="Pairs of metrics that moved together over the last 90 days (q < 0.05, any lag 0–3 days).",
            tone="neutral",
        ),
        Card(
            label="Meaningful 30-day trends",
            value=str(len(meaningful)),
            detail=(
                "; ".join(
                    f"{_label(r.metric)} {r.direction} ({POLARITY_TEXT.get(r.polarity or '', '')})"
                    for r in meaningful
                )
                or "No metric moved beyond its smallest worthwhile change."
            ),
            tone="bad"
            if any(r.polarity == "bad" for r in meaningful)
            else "good"
            if meaningful
            else "neutral",
        ),
    ]
    page.charts.append(
        Chart(
            id="correlations",
            title="How strongly pairs of metrics move together",
            summary=(
                "Spearman's rho of each pair over the last 90 days at its most significant lag (0–3 days); "
                "an association, not a cause."
            ),
            x_title="Pair (first metric → second, days later)",
            y_title="Spearman's rho (−1 to 1)",
            x_kind="category",
            horizontal=True,
            y_range=(-1, 1),
            x=[pair_label(row) for row in best],
            traces=[
                Trace(
                    name="Significant (q < 0.05)",
                    kind="bar",
                    style="significant",
                    x=[pair_label(row) for row in best if row.significant],
                    y=[row.rho for row in best if row.significant],
                    text=[f"q {number(row.q_value, 3)}, {row.n} days" for row in best if row.significant],
                ),
                Trace(
                    name="Not significant",
                    kind="bar",
                    style="muted",
                    x=[pair_label(row) for row in best if not row.significant],
                    y=[row.rho for row in best if not row.significant],
                    text=[f"q {number(row.q_value, 3)}, {row.n} days" for row in best if not row.significant],
                ),
            ],
        )
    )
    page.charts.append(trend_chart(chart_trends))
    page.tables.append(
        Table(
            id="significant-pairs",
            caption="Significant pairs (90-day window)",
            columns=["First metric", "Second metric", "Lag (days)", "rho", "q value", "Days", "Strength"],
            rows=[
                [_label(r.x_metric), _label(r.y_metric), r.lag_days, r.rho, r.q_value, r.n, r.strength]
                for r in significant
            ],
            empty="No pair moved together beyond chance in the last 90 days.",
        )
    )
    page.tables.append(
        Table(
            id="trend-table",
            caption="Trends (Mann–Kendall test, Theil–Sen slope)",
            columns=["Metric", "Window (days)", "Direction", "Meaning", "Slope per week", "p value", "Days"],
            rows=[
                [
                    _label(r.metric),
                    r.window_days,
                    DIRECTION_ARROWS.get(r.direction or "", "too few days"),
                    POLARITY_TEXT.get(r.polarity or "", "—") if r.meaningful else "within normal variation",
                    slope_text(r.metric, r.theil_sen_per_week),
                    r.p_value,
                    r.n,
                ]
                for r in trend_rows
            ],
            empty="No trends computed yet.",
        )
    )
    return page
