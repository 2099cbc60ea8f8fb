"""HRV and heart rate: each night's ln rMSSD with its 7-day mean and normal band, the overnight heart rate
with its baseline, and the days flagged as anomalies, marked by severity."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from polar_api.dashboard.model import Card, Chart, PageData, Table, Trace
from polar_api.dashboard.pages.common import (
    PageContext,
    band_traces,
    envelope,
    metric_label,
    metric_value,
    ms_from_ln,
    number,
)
from polar_api.dashboard.window import on_calendar
from polar_api.read.anomalies import Anomaly, anomalies
from polar_api.read.daily_series import baseline_days, daily_values
from polar_api.read.metrics import hrv_status

SLUG, TITLE = "hrv", "HRV and heart rate"
SEVERITIES = ("warning", "critical")


def anomaly_markers(flagged: Sequence[Anomaly], metric: str, unit: str) -> list[Trace]:
    """One marker trace per severity for ``metric``'s flagged days, at the day's value."""
    traces = []
    for severity in SEVERITIES:
        rows = [a for a in flagged if a.metric_name == metric and a.severity == severity]
        traces.append(
            Trace(
                name=f"Anomaly ({severity})",
                kind="markers",
                style=severity,
                x=[a.day.isoformat() for a in rows],
                y=[a.current_value for a in rows],
                text=[
                    f"{a.direction} the usual range; baseline median {number(a.median_value, 2)} {unit}"
                    for a in rows
                ],
                unit=unit,
            )
        )
    return traces


def build(cursor: duckdb.DuckDBPyConnection, context: PageContext) -> PageData:
    user, window = context.user_id, context.window
    nights = daily_values(cursor, user, ("ln_rmssd", "overnight_hr_bpm"), window.since, window.until)
    status = [row for row in hrv_status(cursor, user, window.since) if row.day <= window.until]
    hr_baseline = baseline_days(cursor, user, "overnight_hr_bpm", window.since, window.until)
    flagged = anomalies(cursor, user, (window.since, window.until)).anomalies
    days = window.iso_days()

    ln_values = on_calendar(window, nights, lambda r: r.day, lambda r: r.values["ln_rmssd"])
    hr_values = on_calendar(window, nights, lambda r: r.day, lambda r: r.values["overnight_hr_bpm"])
    last_night = next((row for row in reversed(nights) if row.values["ln_rmssd"] is not None), None)
    last_hr = next((row for row in reversed(nights) if row.values["overnight_hr_bpm"] is not None), None)
    latest_status = status[0] if status else None
    latest_hr_baseline = next((b for b in reversed(hr_baseline) if b.median is not None), None)

    page = envelope(SLUG, TITLE, context, nights[-1].day if nights else None)
    page.cards = [
        Card(
            label="Last night's HRV",
            value=number(ms_from_ln(last_night.values["ln_rmssd"]), unit="ms") if last_night else "—",
            detail=(
                f"ln rMSSD {number(last_night.values['ln_rmssd'], 2)} on {last_night.day:%a %d %b}."
                if last_night
                else "No night with HRV in this range."
            ),
        ),
        Card(
            label="7-day HRV",
            value=latest_status.status.capitalize() if latest_status else "—",
            detail=(
                f"Mean {number(latest_status.ln_rmssd_7d, 2)} against the band "
                f"{number(latest_status.normal_low, 2)}–{number(latest_status.normal_high, 2)}."
                if latest_status and latest_status.normal_low is not None
                else "The normal band needs 14 nights of history."
            ),
            tone=(
                "good"
                if latest_status and latest_status.status == "within"
                else "warn"
                if latest_status and latest_status.status == "below"
                else "neutral"
            ),
        ),
        Card(
            label="Overnight heart rate",
            value=number(last_hr.values["overnight_hr_bpm"], unit="bpm") if last_hr else "—",
            detail=(
                f"Your baseline median is {number(latest_hr_baseline.median, unit='bpm')}."
                if latest_hr_baseline
                else "No baseline yet (7 nights needed)."
            ),
        ),
        Card(
            label="Anomalies in range",
            value=str(len(flagged)),
            detail=(
                f"{sum(1 for a in flagged if a.severity == 'critical')} of them critical (all metrics)."
                if flagged
                else "No night outside its usual range."
            ),
            tone="warn" if flagged else "good",
        ),
    ]
    page.charts.append(
        Chart(
            id="hrv-nightly",
            title="Nightly HRV (ln rMSSD) with its 7-day mean and normal band",
            summary=(
                "Each night's ln rMSSD from Nightly Recharge, the 7-day mean and the normal band (mean ± "
                "half a standard deviation of the 60 days before that week); flagged nights are marked by "
                "severity."
            ),
            x_title="Date (wake-up day)",
            y_title="ln rMSSD (ln ms)",
            x=days,
            traces=[
                *band_traces("Normal band", window, status, lambda r: r.normal_low, lambda r: r.normal_high),
                Trace(name="Nightly ln rMSSD", kind="line", style="nightly", y=ln_values, unit="ln ms"),
                Trace(
                    name="7-day mean",
                    kind="line",
                    style="primary",
                    y=on_calendar(window, status, lambda r: r.day, lambda r: r.ln_rmssd_7d),
                    unit="ln ms",
                ),
                *anomaly_markers(flagged, "ln_rmssd", "ln ms"),
            ],
        )
    )
    page.charts.append(
        Chart(
            id="overnight-hr",
            title="Overnight heart rate and its baseline",
            summary=(
                "Each night's average heart rate from Nightly Recharge, the median of the 60 nights before "
                "it, and the range outside which a night is flagged; flagged nights are marked by severity."
            ),
            x_title="Date (wake-up day)",
            y_title="Heart rate (bpm)",
            x=days,
            traces=[
                *band_traces(
                    "Usual range", window, hr_baseline, lambda r: r.lower_warning, lambda r: r.upper_warning
                ),
                Trace(name="Overnight heart rate", kind="line", style="heart", y=hr_values, unit="bpm"),
                Trace(
                    name="Baseline median",
                    kind="line",
                    style="baseline",
                    y=on_calendar(window, hr_baseline, lambda r: r.day, lambda r: r.median),
                    unit="bpm",
                ),
                *anomaly_markers(flagged, "overnight_hr_bpm", "bpm"),
            ],
        )
    )
    page.tables.append(
        Table(
            id="anomalies",
            caption="Flagged days in this range (every metric)",
            columns=["Day", "Metric", "Value", "Baseline median", "Deviation", "Severity"],
            rows=[
                [
                    a.day.isoformat(),
                    metric_label(a.metric_name),
                    metric_value(a.metric_name, a.current_value),
                    metric_value(a.metric_name, a.median_value),
                    f"{a.direction}, {number(a.deviation_percent, 1)} %",
                    a.severity,
                ]
                for a in flagged
            ],
            empty="No day in this range was outside its usual range.",
        )
    )
    return page
