"""Data health: is data arriving (state, freshness, last sync), which days lack which stream, what was kept
out of the marts and why, and how old the snapshot behind these pages is."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from polar_api.dashboard.model import Card, Chart, PageData, Table, Tone, Trace
from polar_api.dashboard.pages.common import PageContext, ago, duration_text, envelope, number
from polar_api.read.daily_series import StreamDay, day_span, stream_days
from polar_api.read.data_health import data_health, quarantined_records

SLUG, TITLE = "health", "Data health"

STATE_TEXT = {
    "ok": "Data is arriving",
    "not_worn": "No new data: watch not worn or not synced to Polar?",
    "sync_overdue": "No sync for a while",
    "sync_failing": "Sync failing, retrying",
    "sync_failed": "Sync failed",
    "reauthorize": "Polar needs you to connect again",
    "never_synced": "Never synced",
}
STATE_TONES: dict[str, Tone] = {
    "ok": "good", "not_worn": "warn", "sync_overdue": "warn", "sync_failing": "warn", "sync_failed": "bad",
    "reauthorize": "bad", "never_synced": "neutral",
}  # fmt: skip
STREAMS: tuple[tuple[str, Callable[[StreamDay], bool]], ...] = (
    ("Sleep", lambda d: d.sleep),
    ("Nightly Recharge", lambda d: d.recharge),
    ("Activity", lambda d: d.activity),
    ("Continuous heart rate", lambda d: d.heart_rate),
)
"""The daily streams a day is expected to have; workouts are not daily, so a day without one is no gap."""


@dataclass(frozen=True)
class Gap:
    stream: str
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def find_gaps(days: Sequence[date], has: Sequence[bool], stream: str) -> list[Gap]:
    """Runs of consecutive days without the stream."""
    gaps: list[Gap] = []
    start: date | None = None
    for index, (day, present) in enumerate(zip(days, has, strict=True)):
        if not present and start is None:
            start = day
        if start is not None and (present or index == len(days) - 1):
            gaps.append(Gap(stream, start, day if not present else day - timedelta(days=1)))
            start = None
    return gaps


def build(cursor: duckdb.DuckDBPyConnection, context: PageContext) -> PageData:
    user, window = context.user_id, context.window
    health = data_health(cursor, user)
    quarantine = quarantined_records(cursor, user)
    span = day_span(cursor, user)
    start = max(window.since, span[0]) if span else window.until
    observed = {row.day: row for row in stream_days(cursor, user, start, window.until)}
    days = window.days()
    expected = [day for day in days if day >= start]

    page = envelope(SLUG, TITLE, context, span[1] if span else None)
    snapshot = context.snapshot
    page.cards.append(
        Card(
            label="State",
            value=STATE_TEXT.get(health.state, health.state) if health else "Unknown",
            detail=(
                f"Checked {ago(health.evaluated_at, context.now)}."
                + (f" Last error: {health.last_error}" if health.last_error else "")
                if health
                else "This snapshot carries no data-health row yet."
            ),
            tone=STATE_TONES.get(health.state, "neutral") if health else "neutral",
        )
    )
    if health:
        page.cards += [
            Card(
                label="Freshness",
                value="Fresh" if health.freshness == "fresh" else "Stale",
                detail=(
                    f"New data last arrived {ago(health.last_new_data_at, context.now)}; newest day "
                    f"{health.last_data_day or '—'}."
                ),
                tone="good" if health.freshness == "fresh" else "warn",
            ),
            Card(
                label="Last successful sync",
                value=ago(health.last_sync_at, context.now),
                detail=(
                    f"{health.consecutive_failures} failed attempt(s) since."
                    if health.consecutive_failures
                    else "No failed attempt since."
                ),
                tone="warn" if health.consecutive_failures else "neutral",
            ),
            Card(
                label="Quarantined records",
                value=str(health.quarantined_records),
                detail=f"{health.quarantined_last_7_days} in the last 7 days; reasons below.",
                tone="warn" if health.quarantined_last_7_days else "neutral",
            ),
            Card(
                label="Failed data checks",
                value=str(len(health.failed_checks)),
                detail=", ".join(health.failed_checks) if health.failed_checks else "Every check passed.",
                tone="bad" if health.blocking_checks_failed else "warn" if health.failed_checks else "good",
            ),
        ]
    page.cards.append(
        Card(
            label="Snapshot",
            value=f"{duration_text(snapshot.age_seconds)} old",
            detail=f"Generation {snapshot.generation}, published {snapshot.published_at:%Y-%m-%d %H:%M} UTC.",
            tone="good" if snapshot.age_seconds < 36 * 3600 else "warn",
        )
    )

    coverage: list[list[float | None]] = []
    gaps: list[Gap] = []
    for name, has_stream in STREAMS:
        present = [day in observed and has_stream(observed[day]) for day in expected]
        coverage.append([1.0 if day in observed and has_stream(observed[day]) else None for day in days])
        gaps += find_gaps(expected, present, name) if expected else []
    page.charts.append(
        Chart(
            id="coverage",
            title="Days with data, per stream",
            summary="A filled cell is a day with data from that stream; an empty cell is a day without.",
            x_title="Date",
            y_title="Stream",
            x=window.iso_days(),
            traces=[
                Trace(
                    name="Has data",
                    kind="heatmap",
                    style="coverage",
                    rows=[name for name, _ in STREAMS],
                    z=coverage,
                )
            ],
        )
    )
    gaps.sort(key=lambda gap: (-gap.days, gap.stream, gap.first))
    page.tables.append(
        Table(
            id="gaps",
            caption="Gaps in this range (longest first)",
            columns=["Stream", "From", "To", "Days"],
            rows=[[g.stream, g.first.isoformat(), g.last.isoformat(), g.days] for g in gaps],
            empty="No gaps: every day in this range has every stream.",
        )
    )
    page.tables.append(
        Table(
            id="quarantine",
            caption=f"Quarantined records (newest {len(quarantine)})"
            if quarantine
            else "Quarantined records",
            columns=["Stream", "Day", "Record", "Reason", "First seen", "Last seen"],
            rows=[
                [
                    q.stream,
                    q.day.isoformat() if q.day else None,
                    q.record_key,
                    q.reason,
                    f"{q.first_seen_at:%Y-%m-%d %H:%M}",
                    f"{q.seen_at:%Y-%m-%d %H:%M}",
                ]
                for q in quarantine
            ],
            empty="Nothing quarantined: every record passed validation.",
        )
    )
    if health and health.hours_without_new_data is not None:
        page.notes.append(f"Hours without new data: {number(health.hours_without_new_data, 1)}.")
    return page
