"""The digest's chart: five small panels (sleep, HRV, resting heart rate, load, recovery) over five weeks.

Drawn server-side with matplotlib's Agg canvas on a ``Figure`` of its own (no pyplot, no global state), so
the sensor, the digest job and the API can draw at once. Each panel shows the days' values, the digest's
week shaded, and the 4-week reference mean as a dashed line; a missing day is a gap, not a zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

CHART_NAME = "weekly-digest.png"
AXIS_UNITS = {"sleep": "h", "hrv": "ms", "resting_hr": "bpm", "load": "per day", "recovery": "0-100"}
"""The unit of each panel's daily points (the digest's lines say "a night" or "a week")."""
SIZE_INCHES = (6.0, 7.0)
DPI = 80


def render_digest_chart(details: Mapping[str, Any], path: Path) -> Path:
    """Draw the chart of a digest's ``details`` (``digest.compose_digest``) into ``path`` (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    days = [date.fromisoformat(text) for text in details["days"]]
    week_start = date.fromisoformat(details["week_start"])
    week_end = date.fromisoformat(details["week_end"])
    series: Mapping[str, Mapping[str, Any]] = details["series"]
    comparisons: Mapping[str, Mapping[str, Any]] = details["comparisons"]
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(series), 1, sharex=True)
    for ax, (name, line) in zip(axes, series.items(), strict=True):
        values = [float("nan") if value is None else float(value) for value in line["values"]]
        ax.plot(days, values, marker="o", markersize=2.5, linewidth=1.0, color="#1f5f8b")
        ax.axvspan(
            week_start - timedelta(hours=12), week_end + timedelta(hours=12), color="#f4a259", alpha=0.2
        )
        reference = comparisons.get(name, {}).get("reference")
        if reference is not None and name != "load":  # the load reference is weekly, the points daily
            ax.axhline(float(reference), color="#555555", linestyle="--", linewidth=0.8)
        ax.set_ylabel(f"{line['label']}\n{AXIS_UNITS.get(name, '')}".strip(), fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.25)
    ticks = days[::7]
    axes[-1].set_xticks(ticks, [f"{day:%d %b}" for day in ticks])
    figure.suptitle(f"Week {week_start} to {week_end} (shaded) and the 4 weeks before", fontsize=8)
    figure.savefig(path, format="png")
    return path
