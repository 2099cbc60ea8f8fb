"""Today: did I recover? The latest day's recovery score and what drove it, the HRV status, the illness
watch, the overtraining risk, which analyses the data supports yet, and the day's insights in words."""

from __future__ import annotations

import duckdb

from polar_api.dashboard.model import Card, Chart, Message, PageData, ReferenceBand, Tone, Trace
from polar_api.dashboard.pages.common import (
    PageContext,
    band_traces,
    envelope,
    metric_label,
    number,
)
from polar_api.dashboard.window import on_calendar
from polar_api.read.analytics_series import IllnessWatchDay, RecoveryDay, illness_watch, recovery
from polar_api.read.analytics_status import AnalyticsStatus, analytics_status
from polar_api.read.insights import InsightPattern, Insights, insights
from polar_api.read.metrics import HrvStatusDay, hrv_status

SLUG, TITLE = "today", "Today"

RECOVERY_TONES: dict[str, Tone] = {
    "high": "good",
    "normal": "neutral",
    "low": "warn",
    "insufficient": "neutral",
}
RECOVERY_NORMAL = (30.9, 69.1)
"""Scores between these are ``normal`` (z̄ within ±0.5, docs/methods.md §12); below ``low``, above ``high``."""
HRV_STATUS_TEXT = {
    "within": "Within your normal range",
    "below": "Below your normal range",
    "above": "Above your normal range",
    "insufficient": "Not enough nights yet",
}
HRV_STATUS_TONES: dict[str, Tone] = {"within": "good", "below": "warn", "above": "neutral"}
ILLNESS_TEXT = {
    "none": "No illness pattern",
    "watch": "Watch: all three signs",
    "alert": "Alert: all three, strongly",
    "insufficient": "Not enough data yet",
}
SIGNAL_TEXT = {
    "overnight_hr_bpm": "heart rate up",
    "breathing_rate": "breathing faster",
    "ln_rmssd": "HRV down",
}
ILLNESS_TONES: dict[str, Tone] = {"none": "good", "watch": "warn", "alert": "bad"}
RISK_TONES: dict[str, Tone] = {"low": "good", "moderate": "warn", "high": "bad"}
PRIORITY_TONES: dict[str, Tone] = {
    "critical": "bad", "high": "warn", "medium": "warn", "low": "neutral", "info": "neutral",
    "positive": "good",
}  # fmt: skip


def _recovery_card(latest: RecoveryDay | None) -> Card:
    if latest is None:
        return Card(label="Recovery", value="—", detail="No recovery reading in this range yet.")
    value = number(latest.score) + " / 100" if latest.score is not None else "—"
    detail = (
        f"{latest.level.capitalize()} for you on {latest.day:%a %d %b}; 50 is a usual night."
        if latest.score is not None
        else f"{latest.day:%a %d %b}: needs last night's HRV and 21 nights of baseline."
    )
    return Card(
        label="Recovery", value=value, detail=detail, tone=RECOVERY_TONES.get(latest.level, "neutral")
    )


def _hrv_card(latest: HrvStatusDay | None) -> Card:
    if latest is None:
        return Card(label="HRV status", value="—", detail="No HRV status in this range.")
    band = (
        f"normal {number(latest.normal_low_ms)}–{number(latest.normal_high_ms)} ms"
        if latest.normal_low_ms is not None and latest.normal_high_ms is not None
        else "normal range needs 14 nights"
    )
    return Card(
        label="HRV status (7 days)",
        value=HRV_STATUS_TEXT[latest.status],
        detail=f"7-day mean {number(latest.hrv_7d_ms, unit='ms')}; {band} ({latest.day:%d %b}).",
        tone=HRV_STATUS_TONES.get(latest.status, "neutral"),
    )


def _illness_card(latest: IllnessWatchDay | None) -> Card:
    if latest is None:
        return Card(label="Illness watch", value="—", detail="No illness watch in this range.")
    fired = [SIGNAL_TEXT.get(signal.metric, signal.metric) for signal in latest.signals if signal.fired]
    if latest.level == "insufficient":
        detail = "Needs 21 nights of baseline for heart rate, breathing and HRV."
    elif fired:
        detail = (
            f"{len(fired)} of 3 signs last night ({', '.join(fired)}); the watch needs all three together."
        )
    else:
        detail = "Heart rate, breathing and HRV were as usual last night."
    if latest.level in ("watch", "alert"):
        detail = "Heart rate up, breathing faster and HRV down together: the pattern of an oncoming illness."
    return Card(
        label="Illness watch",
        value=ILLNESS_TEXT[latest.level],
        detail=detail,
        tone=ILLNESS_TONES.get(latest.level, "neutral"),
    )


def _risk_card(found: Insights | None) -> Card:
    risk = _pattern(found, "overtraining_risk")
    if risk is None or risk.significance is None:
        return Card(label="Overtraining risk", value="—", detail="Not computed yet.")
    level = risk.significance
    drivers = ", ".join(name.replace("_", " ") for name in risk.factors)
    detail = f"Score {number(risk.score)} / 100" + (
        f"; from {drivers}." if drivers else "; nothing adds to it."
    )
    return Card(
        label="Overtraining risk",
        value=level.capitalize(),
        detail=detail,
        tone=RISK_TONES.get(level, "neutral"),
    )


def _readiness_card(status: AnalyticsStatus) -> Card:
    unlocked = sum(1 for feature in status.features if feature.unlocked)
    return Card(
        label="Analyses available",
        value=f"{unlocked} of {len(status.features)}",
        detail=(status.recommendation + ".") if status.recommendation else "Every analysis has enough data.",
        tone="good" if unlocked == len(status.features) and status.features else "neutral",
    )


def _pattern(found: Insights | None, name: str) -> InsightPattern | None:
    if found is None:
        return None
    return next((pattern for pattern in found.patterns if pattern.name == name), None)


def _messages(found: Insights | None) -> list[Message]:
    if found is None:
        return []
    messages = [
        Message(
            kind="observation",
            tone=PRIORITY_TONES.get(observation.priority, "neutral"),
            priority=observation.priority,
            text=observation.fact,
            detail=observation.context,
        )
        for observation in found.observations
    ]
    messages += [
        Message(
            kind="suggestion",
            tone="neutral",
            priority="suggestion",
            text=suggestion.description,
            detail=f"Why: {suggestion.reason.replace('_', ' ')}.",
        )
        for suggestion in found.suggestions
    ]
    return messages


def build(cursor: duckdb.DuckDBPyConnection, context: PageContext) -> PageData:
    user, window = context.user_id, context.window
    found = insights(cursor, user, context.now)
    recovery_days = [row for row in recovery(cursor, user, window.since) if row.day <= window.until]
    hrv_days = [row for row in hrv_status(cursor, user, window.since) if row.day <= window.until]
    illness_days = [row for row in illness_watch(cursor, user, window.since) if row.day <= window.until]
    readiness = analytics_status(cursor, user)
    latest_recovery = recovery_days[0] if recovery_days else None

    page = envelope(SLUG, TITLE, context, found.day if found else None)
    page.cards = [
        _recovery_card(latest_recovery),
        _hrv_card(hrv_days[0] if hrv_days else None),
        _illness_card(illness_days[0] if illness_days else None),
        _risk_card(found),
        _readiness_card(readiness),
    ]
    page.messages = _messages(found)

    days = window.iso_days()
    page.charts.append(
        Chart(
            id="recovery-score",
            title="Recovery score",
            summary=(
                "Each morning's recovery score: 50 is a usual night for you, higher is better recovered; the "
                "shaded band is the normal range."
            ),
            x_title="Date",
            y_title="Recovery score (0–100)",
            x=days,
            y_range=(0, 100),
            reference=[ReferenceBand(y0=RECOVERY_NORMAL[0], y1=RECOVERY_NORMAL[1], label="normal for you")],
            traces=[
                Trace(
                    name="Recovery score",
                    kind="line",
                    style="primary",
                    y=on_calendar(window, recovery_days, lambda r: r.day, lambda r: r.score),
                )
            ],
        )
    )
    contributors = latest_recovery.contributors if latest_recovery else []
    page.charts.append(
        Chart(
            id="recovery-contributors",
            title=f"What drove recovery on {latest_recovery.day:%d %b}"
            if latest_recovery
            else "Recovery contributors",
            summary=(
                "Each part of the recovery score in robust standard deviations from your own 60-night "
                "baseline, signed so that right of zero is better than usual."
            ),
            x_title="Contributor",
            y_title="Better (+) or worse (−) than usual, robust SD",
            x_kind="category",
            horizontal=True,
            x=[metric_label(c.name) for c in contributors],
            traces=[
                Trace(
                    name="Robust z",
                    kind="bar",
                    style="contributor",
                    y=[c.z if c.available else None for c in contributors],
                    text=[f"weight {number((c.weight or 0) * 100)} %" for c in contributors],
                )
            ],
        )
    )
    page.charts.append(
        Chart(
            id="hrv-status",
            title="HRV status: 7-day ln rMSSD against your normal band",
            summary=(
                "The 7-day mean of nightly ln rMSSD (3 nights of 7 needed) and your normal band, the mean ± "
                "half a standard deviation of the 60 days before that week."
            ),
            x_title="Date",
            y_title="ln rMSSD (ln ms)",
            x=days,
            traces=[
                *band_traces(
                    "Normal band", window, hrv_days, lambda r: r.normal_low, lambda r: r.normal_high
                ),
                Trace(
                    name="7-day mean",
                    kind="line",
                    style="primary",
                    y=on_calendar(window, hrv_days, lambda r: r.day, lambda r: r.ln_rmssd_7d),
                ),
            ],
        )
    )
    page.charts.append(
        Chart(
            id="readiness",
            title="Which analyses your data supports",
            summary="Days with data in the last 90 days, as a share of the days each analysis needs.",
            x_title="Analysis",
            y_title="Days with data, % of the days needed",
            x_kind="category",
            horizontal=True,
            y_range=(0, 100),
            x=[f.feature.replace("_", " ") for f in readiness.features],
            traces=[
                Trace(
                    name="Progress",
                    kind="bar",
                    style="progress",
                    y=[f.progress_percent for f in readiness.features],
                    text=[
                        f"{f.days_with_data} days with {f.stream} data; {f.days_required} needed"
                        for f in readiness.features
                    ],
                    unit="%",
                )
            ],
        )
    )
    if found is None:
        page.notes.append("The analytics have not run for this user yet: cards fill in after the next sync.")
    return page
