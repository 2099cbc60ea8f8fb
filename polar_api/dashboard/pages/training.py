"""Training: the daily load, the acute (7-day) against the chronic (28-day) load and their ratios, and the
workouts of the range by sport."""

from __future__ import annotations

from collections import defaultdict

import duckdb

from polar_api.dashboard.model import Card, Chart, PageData, ReferenceBand, Table, Trace
from polar_api.dashboard.pages.common import PageContext, envelope, number
from polar_api.dashboard.window import on_calendar
from polar_api.read.exercises import ExerciseSummary, exercises
from polar_api.read.metrics import training_load

SLUG, TITLE = "training", "Training"
ACWR_SWEET_SPOT = (0.8, 1.3)
"""The commonly quoted ACWR range: a heuristic, shown as such (docs/methods.md §7.5, Impellizzeri 2020)."""


def sport_name(sport: str | None) -> str:
    return (sport or "unknown").replace("_", " ").capitalize()


def by_sport(workouts: list[ExerciseSummary]) -> dict[str, tuple[int, float, float]]:
    """Sport -> (sessions, hours, summed load), most sessions first."""
    totals: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for workout in workouts:
        entry = totals[sport_name(workout.sport)]
        entry[0] += 1
        entry[1] += (workout.duration_minutes or 0.0) / 60.0
        entry[2] += workout.training_load or 0.0
    ordered = sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))
    return {sport: (int(entry[0]), entry[1], entry[2]) for sport, entry in ordered}


def build(cursor: duckdb.DuckDBPyConnection, context: PageContext) -> PageData:
    user, window = context.user_id, context.window
    load = [row for row in training_load(cursor, user, window.since) if row.day <= window.until]
    workouts = exercises(cursor, user, window.since, window.until)
    sports = by_sport(workouts)
    days = window.iso_days()
    latest = load[0] if load else None

    page = envelope(SLUG, TITLE, context, latest.day if latest else None)
    page.cards = [
        Card(
            label="Workouts",
            value=str(len(workouts)),
            detail=f"{number(sum(h for _, h, _ in sports.values()), 1)} hours in this range.",
        ),
        Card(
            label="Acute : chronic load",
            value=number(latest.acwr_coupled, 2) if latest else "—",
            detail=(
                "7-day over 28-day mean load; 0.8–1.3 is a common rule of thumb, not a validated limit."
                if latest and latest.acwr_coupled is not None
                else "Shown after 28 days of history."
            ),
            tone=(
                "neutral"
                if latest is None or latest.acwr_coupled is None
                else "good"
                if ACWR_SWEET_SPOT[0] <= latest.acwr_coupled <= ACWR_SWEET_SPOT[1]
                else "warn"
            ),
        ),
        Card(
            label="Load this week",
            value=number(latest.acute_7d, 0) if latest else "—",
            detail="Mean daily load over the last 7 days (rest days count as 0).",
        ),
        Card(
            label="Polar's strain / tolerance",
            value=number(latest.polar_ratio, 2) if latest else "—",
            detail="Cardio load only, 7 days over 28 days.",
        ),
    ]
    page.charts.append(
        Chart(
            id="daily-load",
            title="Daily training load",
            summary=(
                "The summed load of each day's workouts (cardio load, else Polar's training load); 0 on "
                "rest days."
            ),
            x_title="Date",
            y_title="Training load (a.u.)",
            x=days,
            traces=[
                Trace(
                    name="Daily load",
                    kind="bar",
                    style="load",
                    y=on_calendar(window, load, lambda r: r.day, lambda r: r.daily_load),
                )
            ],
        )
    )
    page.charts.append(
        Chart(
            id="acute-chronic",
            title="Acute (7-day) and chronic (28-day) load",
            summary="Rolling means of the daily load over the last 7 and 28 calendar days.",
            x_title="Date",
            y_title="Mean daily load (a.u.)",
            x=days,
            traces=[
                Trace(
                    name="Acute, 7 days",
                    kind="line",
                    style="acute",
                    y=on_calendar(window, load, lambda r: r.day, lambda r: r.acute_7d),
                ),
                Trace(
                    name="Chronic, 28 days",
                    kind="line",
                    style="chronic",
                    y=on_calendar(window, load, lambda r: r.day, lambda r: r.chronic_28d),
                ),
            ],
        )
    )
    page.charts.append(
        Chart(
            id="acwr",
            title="Acute : chronic workload ratio",
            summary=(
                "The 7-day over the 28-day load, rolling and exponentially weighted; none before 28 days of "
                "history. The shaded 0.8–1.3 zone is a rule of thumb, not a validated threshold."
            ),
            x_title="Date",
            y_title="Ratio (acute / chronic)",
            x=days,
            reference=[
                ReferenceBand(y0=ACWR_SWEET_SPOT[0], y1=ACWR_SWEET_SPOT[1], label="0.8–1.3 rule of thumb")
            ],
            traces=[
                Trace(
                    name="ACWR (rolling)",
                    kind="line",
                    style="primary",
                    y=on_calendar(window, load, lambda r: r.day, lambda r: r.acwr_coupled),
                ),
                Trace(
                    name="ACWR (EWMA)",
                    kind="line",
                    style="secondary",
                    y=on_calendar(window, load, lambda r: r.day, lambda r: r.acwr_ewma),
                ),
            ],
        )
    )
    page.charts.append(
        Chart(
            id="sports",
            title="Workouts by sport",
            summary="How many workouts of each sport started in this range.",
            x_title="Sport",
            y_title="Workouts",
            x_kind="category",
            x=list(sports),
            traces=[
                Trace(
                    name="Workouts",
                    kind="bar",
                    style="load",
                    y=[float(sessions) for sessions, _, _ in sports.values()],
                    text=[f"{number(h, 1)} h, load {number(total)}" for _, h, total in sports.values()],
                )
            ],
        )
    )
    page.tables.append(
        Table(
            id="sport-totals",
            caption="Workouts by sport in this range",
            columns=["Sport", "Workouts", "Hours", "Summed load"],
            rows=[[sport, n, round(h, 1), round(total)] for sport, (n, h, total) in sports.items()],
            empty="No workout in this range.",
        )
    )
    return page
