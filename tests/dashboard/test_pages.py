"""The page builders' pure parts: windows, laying rows on a calendar, gaps, the best lag of a pair, and what
colour a trend gets (a rising resting heart rate is bad)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from polar_api.dashboard.pages.health import Gap, find_gaps
from polar_api.dashboard.pages.patterns import best_lags, slope_text, trend_chart
from polar_api.dashboard.window import UnknownRange, on_calendar, window_for
from polar_api.read.analytics_series import CorrelationRow, TrendRow

DAY = date(2026, 3, 1)


def test_a_range_of_n_days_is_the_apis_days_n_window_and_all_starts_on_the_first_day() -> None:
    thirty = window_for("30", DAY, date(2025, 1, 1))
    assert (thirty.since, thirty.until) == (DAY - timedelta(days=30), DAY)
    assert len(thirty.days()) == 31 and thirty.days()[0] == thirty.since and thirty.days()[-1] == DAY
    assert window_for("all", DAY, date(2026, 1, 2)).since == date(2026, 1, 2)
    assert window_for("all", DAY, None).since == DAY
    with pytest.raises(UnknownRange):
        window_for("7", DAY, None)


def test_a_day_without_a_row_or_without_a_value_is_none_never_zero() -> None:
    window = window_for("30", DAY, None)
    rows = [(DAY, 0.0), (DAY - timedelta(days=2), None), (DAY - timedelta(days=3), 4.5)]
    values = on_calendar(window, rows, lambda r: r[0], lambda r: r[1])
    assert len(values) == 31
    assert values[-1] == 0.0, "a real zero stays zero"
    assert values[-2] is None and values[-3] is None and values[-4] == 4.5
    assert values.count(None) == 29


def test_gaps_are_runs_of_days_without_the_stream() -> None:
    days = [DAY + timedelta(days=n) for n in range(8)]
    has = [True, False, False, True, True, False, True, False]
    assert find_gaps(days, has, "Sleep") == [
        Gap("Sleep", days[1], days[2]),
        Gap("Sleep", days[5], days[5]),
        Gap("Sleep", days[7], days[7]),
    ]
    assert [gap.days for gap in find_gaps(days, has, "Sleep")] == [2, 1, 1]
    assert find_gaps(days, [True] * 8, "Sleep") == []
    assert find_gaps(days, [False] * 8, "Sleep") == [Gap("Sleep", days[0], days[7])]


def correlation(lag: int, q: float | None, significant: bool) -> CorrelationRow:
    return CorrelationRow(
        day=DAY, x_metric="training_load", y_metric="ln_rmssd", lag_days=lag, n=80, n_effective=60.0,
        rho=0.3, p_value=q, q_value=q, strength="small", direction="positive", significant=significant,
    )  # fmt: skip


def test_a_pair_is_shown_at_its_lag_with_the_smallest_q() -> None:
    rows = [correlation(0, 0.2, False), correlation(2, 0.01, True), correlation(1, None, False)]
    assert [row.lag_days for row in best_lags(rows)] == [2]
    tied = [correlation(3, 0.04, True), correlation(1, 0.04, True)]
    assert [row.lag_days for row in best_lags(tied)] == [1], "ties go to the shortest lag"


def trend(metric: str, direction: str, polarity: str, meaningful: bool) -> TrendRow:
    return TrendRow(
        day=DAY, metric=metric, window_days=30, n=30, mk_tau=0.5, p_value=0.001, theil_sen_per_week=1.0,
        pct_change_7d_vs_30d=4.0, meaningful=meaningful, direction=direction, polarity=polarity,
    )  # fmt: skip


def test_a_rising_resting_heart_rate_is_drawn_as_bad_and_a_rising_hrv_as_good() -> None:
    chart = trend_chart(
        [
            trend("overnight_hr_bpm", "rising", "bad", True),
            trend("ln_rmssd", "rising", "good", True),
            trend("steps", "rising", "good", False),
        ]
    )
    by_style = {t.style: t for t in chart.traces}
    assert by_style["trend-bad"].x == ["Overnight heart rate"]
    assert by_style["trend-bad"].name == "Trend worth attention"
    assert by_style["trend-good"].x == ["HRV (ln rMSSD)"]
    assert by_style["trend-neutral"].x == ["Steps"], "not meaningful: neither good nor bad"
    assert by_style["trend-bad"].text == ["↑ rising"]


def test_a_trends_weekly_slope_is_written_in_the_unit_a_person_reads() -> None:
    assert slope_text("sleep_seconds", 293.09) == "+4.9 min"
    assert slope_text("ln_rmssd", -0.02) == "−0.020 ln ms"
    assert slope_text("steps", -329.4) == "−329 steps"
    assert slope_text("steps", None) == "—"
