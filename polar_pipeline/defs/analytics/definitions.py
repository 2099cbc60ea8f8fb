"""Analytics: the pattern tables (``polar_pipeline/analytics``) as user × day partitioned assets.

Seven tables at most, because every partitioned asset costs Dagster bookkeeping per partition: each is a
whole family of results (all correlation pairs and lags, all trend metrics and windows) in one table.
"""

import dagster as dg

from polar_pipeline.analytics import correlations, illness, insights, readiness, recovery, risk, trends
from polar_pipeline.defs.analytics.assets import AnalyticsTable, build_analytics_asset
from polar_pipeline.orchestration.partitions import user_day_partitions
from polar_pipeline.settings import Settings

DAILY = "marts.daily_metrics"
BASELINES = "marts.baselines"

TABLES: tuple[AnalyticsTable, ...] = (
    AnalyticsTable(
        name="correlations",
        compute=correlations.compute_correlations,
        inputs=(DAILY,),
        lookback_days=correlations.LOOKBACK_DAYS,
        description=(
            "Lagged Spearman correlations over the trailing 90 days (sleep vs next nights' HRV, training "
            "load vs next-day HRV and overnight HR, steps vs sleep), with an autocorrelation-corrected "
            "effective n and Benjamini-Hochberg q over each day's family."
        ),
    ),
    AnalyticsTable(
        name="trends",
        compute=trends.compute_trends,
        inputs=(DAILY,),
        lookback_days=trends.LOOKBACK_DAYS,
        description=(
            "Mann-Kendall trends with Theil-Sen slopes over trailing windows; meaningful only beyond the "
            "smallest worthwhile change; direction and polarity (rising HRV good, rising HR bad)."
        ),
    ),
    AnalyticsTable(
        name="risk",
        compute=risk.compute_risk,
        inputs=(DAILY, BASELINES, "marts.training_load", "marts.sleep_debt"),
        lookback_days=risk.LOOKBACK_DAYS,
        description=(
            "Overtraining risk 0-100: HRV below and overnight HR above the personal normal band, sleep debt "
            "and ACWR above 1.5 (a heuristic), weighted, with how many days it has persisted."
        ),
    ),
    AnalyticsTable(
        name="readiness",
        compute=readiness.compute_readiness,
        inputs=(DAILY,),
        lookback_days=readiness.LOOKBACK_DAYS,
        description=(
            "Which features have enough data: distinct days with data per stream, not calendar span, so "
            "someone who never trains still unlocks the sleep and HRV features."
        ),
    ),
    AnalyticsTable(
        name="recovery",
        compute=recovery.compute_recovery,
        inputs=(DAILY, BASELINES),
        lookback_days=recovery.LOOKBACK_DAYS,
        description=(
            "Recovery 0-100 from robust z-scores of HRV, overnight HR and sleep against personal baselines; "
            "NULL until the HRV baseline is ready."
        ),
    ),
    AnalyticsTable(
        name="illness_watch",
        compute=illness.compute_illness_watch,
        inputs=(DAILY, BASELINES),
        lookback_days=illness.LOOKBACK_DAYS,
        description=(
            "A daily early-illness flag: overnight HR and breathing rate up while HRV falls against the "
            "personal baseline, with the signals that fired."
        ),
    ),
)

INSIGHTS = AnalyticsTable(
    name="insights",
    compute=insights.compute_insights,
    inputs=(
        DAILY,
        "marts.anomalies",
        "marts.sleep_debt",
        *(f"analytics.{name}" for name in ("correlations", "trends", "risk", "recovery", "illness_watch")),
        "analytics.readiness",
    ),
    lookback_days=insights.LOOKBACK_DAYS,
    description=(
        "What a person reads: observations (category, priority, a sentence whose every number names the "
        "row it comes from) and suggestions, from the day's marts and analytics."
    ),
)
ALL_TABLES: tuple[AnalyticsTable, ...] = (*TABLES, INSIGHTS)


def build_defs(settings: Settings) -> dg.Definitions:
    partitions = user_day_partitions(settings)
    return dg.Definitions(assets=[build_analytics_asset(table, partitions) for table in ALL_TABLES])
