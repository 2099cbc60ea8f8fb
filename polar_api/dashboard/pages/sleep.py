"""Sleep: each night's stages stacked, the sleep score, and the 14-night sleep debt."""

from __future__ import annotations

import duckdb

from polar_api.dashboard.model import Card, Chart, PageData, Trace
from polar_api.dashboard.pages.common import PageContext, envelope, number
from polar_api.dashboard.window import on_calendar, present
from polar_api.read.metrics import sleep_debt
from polar_api.read.sleep import sleep_nights

SLUG, TITLE = "sleep", "Sleep"


def build(cursor: duckdb.DuckDBPyConnection, context: PageContext) -> PageData:
    user, window = context.user_id, context.window
    nights = sleep_nights(cursor, user, window.since, window.until)  # newest first
    debt = [row for row in sleep_debt(cursor, user, window.since) if row.day <= window.until]
    days = window.iso_days()
    last = nights[0] if nights else None
    latest_debt = next((row for row in debt if row.debt_hours is not None), None)
    totals = [n.total_sleep_hours for n in nights if n.total_sleep_hours is not None]
    scores = [n.sleep_score for n in nights if n.sleep_score is not None]

    page = envelope(SLUG, TITLE, context, last.date if last else None)
    page.cards = [
        Card(
            label="Last night",
            value=number(last.total_sleep_hours, 1, "h") if last else "—",
            detail=f"Woke up {last.date:%a %d %b}; sleep score {number(last.sleep_score)}."
            if last
            else "No night in this range.",
        ),
        Card(
            label="Average night",
            value=number(sum(totals) / len(totals), 1, "h") if totals else "—",
            detail=f"Over {len(totals)} nights with data in this range.",
        ),
        Card(
            label="Average sleep score",
            value=number(sum(scores) / len(scores)) if scores else "—",
            detail=f"Polar's score, 1–100, over {len(scores)} scored nights.",
        ),
        Card(
            label="Sleep debt (14 nights)",
            value=number(latest_debt.debt_hours, 1, "h") if latest_debt else "—",
            detail=(
                f"Shortfall against your need over {latest_debt.nights} nights with data; extra sleep is not "
                "banked."
                if latest_debt
                else "No night with data in the last 14."
            ),
            tone=(
                "good"
                if latest_debt and (latest_debt.debt_hours or 0) < 2
                else "warn"
                if latest_debt
                else "neutral"
            ),
        ),
    ]
    page.charts.append(
        Chart(
            id="sleep-stages",
            title="Sleep stages per night",
            summary="Each night's deep, REM and light sleep, stacked; a night without data stays empty.",
            x_title="Date (wake-up day)",
            y_title="Sleep (hours)",
            x=days,
            barmode="stack",
            traces=[
                Trace(
                    name="Deep",
                    kind="bar",
                    style="deep",
                    y=on_calendar(window, nights, lambda n: n.date, lambda n: n.deep_sleep_hours),
                    unit="h",
                ),
                Trace(
                    name="REM",
                    kind="bar",
                    style="rem",
                    y=on_calendar(window, nights, lambda n: n.date, lambda n: n.rem_sleep_hours),
                    unit="h",
                ),
                Trace(
                    name="Light",
                    kind="bar",
                    style="light",
                    y=on_calendar(window, nights, lambda n: n.date, lambda n: n.light_sleep_hours),
                    unit="h",
                ),
            ],
        )
    )
    score = on_calendar(window, nights, lambda n: n.date, lambda n: n.sleep_score)
    page.charts.append(
        Chart(
            id="sleep-score",
            title="Sleep score",
            summary=f"Polar's sleep score of each night, 1–100 ({present(score)} scored nights in range).",
            x_title="Date (wake-up day)",
            y_title="Sleep score (1–100)",
            x=days,
            y_range=(0, 100),
            traces=[Trace(name="Sleep score", kind="line", style="primary", y=score)],
        )
    )
    page.charts.append(
        Chart(
            id="sleep-debt",
            title="Sleep debt over the last 14 nights",
            summary=(
                "The sum of each night's shortfall against your sleep need (your goal, else 8 h) over the 14 "
                "nights up to that day; nights without data are skipped, not counted as no sleep."
            ),
            x_title="Date (wake-up day)",
            y_title="Sleep debt (hours)",
            x=days,
            traces=[
                Trace(
                    name="Nightly shortfall",
                    kind="bar",
                    style="muted",
                    y=on_calendar(
                        window,
                        debt,
                        lambda r: r.day,
                        lambda r: None if r.deficit_seconds is None else r.deficit_seconds / 3600.0,
                    ),
                    unit="h",
                ),
                Trace(
                    name="14-night debt",
                    kind="line",
                    style="primary",
                    y=on_calendar(window, debt, lambda r: r.day, lambda r: r.debt_hours),
                    unit="h",
                ),
            ],
        )
    )
    return page
