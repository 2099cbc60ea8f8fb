"""The analytics tools: polar-flow-server's get_health_insights, get_baselines and get_patterns, and ours:
get_hrv_status, get_training_load, get_trends, get_correlations, get_anomalies and get_illness_watch.

Each reads with the read-layer functions of its REST routes: ``get_health_insights`` = ``/insights``,
``get_baselines`` = ``/baselines``, ``get_patterns`` = ``/patterns`` + ``/anomalies``, and the others the
route of the same name. What the numbers mean is in docs/methods.md; the descriptions below say enough for a
model to read them without it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from polar_api.mcp.access import user_for_call
from polar_api.mcp.answers import Freshness, McpRuntime, reading
from polar_api.mcp.arguments import Days, DaysOrLatest, UserId
from polar_api.mcp.tools_data import READ_ONLY
from polar_api.read.analytics_series import (
    CorrelationRow,
    IllnessWatchDay,
    TrendRow,
    correlations,
    illness_watch,
    trends,
)
from polar_api.read.anomalies import Anomalies, anomalies
from polar_api.read.baselines import Baseline, latest_baselines
from polar_api.read.insights import Insights, empty_insights, insights
from polar_api.read.metrics import HrvStatusDay, TrainingLoadDay, hrv_status, training_load
from polar_api.read.patterns import Pattern, latest_patterns

NULLS = "Null numbers mean not enough data for that statistic yet, never zero."


class InsightsAnswer(Freshness):
    insights: Insights = Field(description="polar-flow-server's unified insights of the user's latest day")


class BaselinesAnswer(Freshness):
    baselines: list[Baseline] = Field(description="one item per metric, of the user's latest day")


class PatternsAnswer(Freshness):
    patterns: list[Pattern] = Field(description="the user's patterns of their latest day")
    anomalies: Anomalies = Field(description="the metrics flagged on the user's latest day")


class HrvStatusAnswer(Freshness):
    days: int
    records: list[HrvStatusDay] = Field(description="one item per day, newest first")


class TrainingLoadAnswer(Freshness):
    days: int
    records: list[TrainingLoadDay] = Field(description="one item per day, newest first")


class TrendsAnswer(Freshness):
    days: int | None = Field(description="the window asked for; null: the latest day only")
    records: list[TrendRow] = Field(description="newest day first, then by metric and window")


class CorrelationsAnswer(Freshness):
    days: int | None = Field(description="the window asked for; null: the latest day only")
    records: list[CorrelationRow] = Field(description="newest day first, then by pair and lag")


class AnomaliesAnswer(Freshness):
    days: int | None = Field(description="the window asked for; null: the latest day only")
    anomalies: Anomalies


class IllnessWatchAnswer(Freshness):
    days: int
    records: list[IllnessWatchDay] = Field(description="one item per night, newest first")


def register(server: MCPServer, runtime: McpRuntime) -> None:
    """Add the analytics tools to ``server``."""

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Start here. Everything the analytics say about the user's latest day D in one answer: "
            "observations (facts with category and priority critical > high > medium > low > info > "
            "positive, each with the numbers it rests on as evidence), suggestions (action such as "
            "rest_day, reduce_intensity, prioritize_recovery, monitor_closely, train_normally; confidence "
            "= share of the rule's inputs available, not a probability), current_metrics (hrv = RMSSD ms, "
            "sleep_score 1-100, resting_hr = mean overnight heart rate bpm, training_load_ratio = Polar's "
            "strain/tolerance), baselines per metric (baseline = the median of the 60 days before D; "
            "percent_of_baseline = 100 x current/median; trend rising/falling/flat with polarity "
            "good/bad/neutral), patterns, anomalies, and which features the data unlocks (status "
            "unavailable below 7 days of sleep or HRV data, partial below 21, else ready). An empty "
            "answer (status unavailable, day null) means the analytics have not run for the user yet."
        ),
    )
    def get_health_insights(user_id: UserId = None) -> InsightsAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            now = datetime.now(UTC)
            found = insights(current.cursor, user, now)
            if found is None:
                found = empty_insights(user, now)
            return InsightsAnswer(**current.freshness("insights", [found.day]), insights=found)

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Personal baselines of the user's latest day, per metric (ln_rmssd in ln ms, hrv_rmssd_ms in "
            "ms, sleep_score, sleep_seconds in s, overnight_hr_bpm, breathing_rate per min, steps, "
            "training_load), from the 60 days before that day: baseline_value = median, q1/q3/iqr, mean, "
            "std_dev, robust_sd (1.4826 x MAD), lower_bound/upper_bound = the warning fences (q1/q3 -/+ "
            "1.5 x spread), lower/upper_critical (3 x spread), baseline_7d/30d/90d = rolling means, "
            "sample_count = days with a value, status ready (>= 21 days), partial (7-20) or insufficient. "
            "A value between the warning fences is normal for this person. Physical information (VO2max, "
            "weight, thresholds) is not collected by this installation. " + NULLS
        ),
    )
    def get_baselines(user_id: UserId = None) -> BaselinesAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            found = latest_baselines(current.cursor, user)
            return BaselinesAnswer(**current.freshness("baselines", (b.day for b in found)), baselines=found)

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Patterns of the user's latest day and that day's anomalies. Patterns: three lagged "
            "correlations (sleep_hrv_correlation, training_recovery_lag, activity_sleep_correlation: "
            "score = Spearman rho -1..1, significance from the false-discovery-rate q), overtraining_risk "
            "(score 0-100: low < 25 <= moderate < 50 <= high), recovery_readiness (0-100, 50 = typical), "
            "hrv_trend, sleep_trend, resting_hr_trend (score = 7-day vs 30-day change in %), illness_watch "
            "(score = signals fired, 0-3); confidence = share of the window or inputs with data, not 1 - p; "
            "details holds the factors, contributors or signals. Anomalies: each metric outside its "
            "personal warning fences that day (severity warning or critical, direction above/below, "
            "deviation_percent against the baseline median). " + NULLS
        ),
    )
    def get_patterns(user_id: UserId = None) -> PatternsAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            found = latest_patterns(current.cursor, user)
            flagged = anomalies(current.cursor, user)
            return PatternsAnswer(
                **current.freshness("patterns", (p.day for p in found)), patterns=found, anomalies=flagged
            )

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "HRV status per day: the 7-day mean of ln RMSSD (ln_rmssd_7d; hrv_7d_ms = its geometric mean in "
            "ms; needs 3 of 7 nights) against the user's normal band from the 60 days before that week "
            "(normal_low/normal_high in ln ms, normal_low_ms/normal_high_ms in ms: baseline mean -/+ 0.5 "
            "SD; needs 14 nights). status: below, within or above the band, or insufficient. Below the "
            "band for several days suggests accumulated fatigue, stress or illness; above is not "
            "automatically good. cv_7d = the week's coefficient of variation of ln RMSSD in %. "
            + NULLS
            + " Default window: 30 days."
        ),
    )
    def get_hrv_status(days: Days = 30, user_id: UserId = None) -> HrvStatusAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            since, until = current.window(days)
            rows = hrv_status(current.cursor, user, since)
            return HrvStatusAnswer(
                **current.freshness("HRV status", (r.day for r in rows), (since, until)),
                days=days,
                records=rows,
            )

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Training load per day: daily_load (sum of the day's session loads; rest days are 0), acute_7d "
            "and chronic_28d (mean daily load over 7 and 28 days), acute:chronic ratios acwr_coupled, "
            "acwr_uncoupled and acwr_ewma (exponentially weighted), and polar_ratio (Polar's "
            "strain/tolerance). Every ratio is null until 28 days of history and when its denominator is "
            "0. A ratio near 1 means load as usual; the often-quoted 0.8-1.3 'sweet spot' and > 1.5 "
            "'danger zone' come from team-sport studies and are heuristics, not validated limits. "
            "Default window: 30 days."
        ),
    )
    def get_training_load(days: Days = 30, user_id: UserId = None) -> TrainingLoadAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            since, until = current.window(days)
            rows = training_load(current.cursor, user, since)
            return TrainingLoadAnswer(
                **current.freshness("training load", (r.day for r in rows), (since, until)),
                days=days,
                records=rows,
            )

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Trends per metric over 30- and 90-day windows (the latest day, or every day of a window): "
            "Mann-Kendall tau and p_value, theil_sen_per_week (slope in the metric's unit per week), "
            "pct_change_7d_vs_30d (%), meaningful (significant and larger than the smallest worthwhile "
            "change), direction rising/falling/flat and polarity good/bad/neutral (what that direction means "
            "for this metric: rising overnight heart rate is bad, rising HRV good). Only meaningful trends "
            "deserve comment. " + NULLS
        ),
    )
    def get_trends(days: DaysOrLatest = None, user_id: UserId = None) -> TrendsAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            window = None if days is None else current.window(days)
            rows = trends(current.cursor, user, None if window is None else window[0])
            return TrendsAnswer(
                **current.freshness("trends", (r.day for r in rows), window), days=days, records=rows
            )

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Lagged correlations between the user's metrics over the 90 days up to each day: Spearman rho "
            "of x_metric on day t against y_metric on day t + lag_days, n pairs, n_effective (after "
            "autocorrelation), p_value, q_value (Benjamini-Hochberg), strength (Hopkins' scale) and "
            "direction; significant = q < 0.05. A correlation is an association, not proof of cause. The "
            "latest day, or every day of a window. " + NULLS
        ),
    )
    def get_correlations(days: DaysOrLatest = None, user_id: UserId = None) -> CorrelationsAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            window = None if days is None else current.window(days)
            rows = correlations(current.cursor, user, None if window is None else window[0])
            return CorrelationsAnswer(
                **current.freshness("correlations", (r.day for r in rows), window), days=days, records=rows
            )

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Metrics outside the user's own normal range: without days, those of the latest day; with "
            "days, every flagged day of the window. Per item: metric_name, current_value (the metric's "
            "unit; ln_rmssd in ln ms), baseline_value = median of the 60 days before, the warning "
            "(lower/upper_bound) and critical fences, severity warning or critical, direction above or "
            "below, deviation_percent against the median, robust_z. Fenced metrics: ln_rmssd, "
            "overnight_hr_bpm, breathing_rate, sleep_seconds, steps. An empty list means nothing was "
            "outside its fences, which is good news, not missing data."
        ),
    )
    def get_anomalies(days: DaysOrLatest = None, user_id: UserId = None) -> AnomaliesAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            window = None if days is None else current.window(days)
            found = anomalies(current.cursor, user, window)
            return AnomaliesAnswer(
                **current.freshness("anomaly check", [found.to_date], window, sparse=True),
                days=days,
                anomalies=found,
            )

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Illness watch per night: three signals against the user's ready 60-night baseline (z = "
            "(value - median) / robust SD): overnight_hr_bpm fires at z >= 1.0, breathing_rate at z >= 2.0, "
            "ln_rmssd at z <= -0.5. level: watch when all three fire on the same night, alert when all three "
            "are past twice their thresholds, none otherwise, insufficient when a signal has no value or "
            "no ready baseline; flagged = watch or alert. It is "
            "an early hint that the body is fighting something, not a diagnosis. Default window: 30 days."
        ),
    )
    def get_illness_watch(days: Days = 30, user_id: UserId = None) -> IllnessWatchAnswer:
        user = user_for_call(user_id)
        with reading(runtime, user) as current:
            since, until = current.window(days)
            rows = illness_watch(current.cursor, user, since)
            return IllnessWatchAnswer(
                **current.freshness("illness watch", (r.day for r in rows), (since, until)),
                days=days,
                records=rows,
            )
