"""Views the serving snapshot offers beside its tables: reading shapes over the copied analytics tables.

``analytics.patterns`` is polar-flow-server's pattern list (``pattern_type``, ``pattern_name``, ``score``,
``confidence``, ``significance``, ``metrics_involved``, ``sample_count``, ``details``), one row per user,
day and pattern, read from the analytics tables instead of being computed per request:

* ``sleep_hrv_correlation``, ``training_recovery_lag``, ``activity_sleep_correlation``: the pair's lag with
  the smallest q (analytics.correlations); score = Spearman's rho; significance high (q < 0.01), medium
  (q < 0.05) or low.
* ``overtraining_risk``, ``recovery_readiness``: analytics.risk and analytics.recovery, score 0-100,
  significance = their level.
* ``hrv_trend``, ``sleep_trend``, ``resting_hr_trend``: the 30-day rows of analytics.trends; score = the
  7-day vs 30-day change (%), significance high when the trend is meaningful, else low.
* ``illness_watch``: analytics.illness_watch; score = the number of signals that fired (0-3).

``confidence`` is coverage, never 1 - p: the share of the window with data (correlations, trends), or of the
factors, components or signals that were available (risk, recovery, illness watch). A view is created only
when every table it reads is in the snapshot.
"""

from __future__ import annotations

PATTERNS_SQL = """
WITH best_pair AS (
    SELECT *, row_number() OVER (
        PARTITION BY user_id, day, x_metric, y_metric ORDER BY q_value NULLS LAST, lag_days
    ) AS rank_in_pair
    FROM analytics.correlations
    WHERE (x_metric, y_metric) IN (
        ('sleep_score', 'ln_rmssd'), ('training_load', 'ln_rmssd'), ('steps', 'sleep_score')
    )
),
available AS (
    SELECT user_id, day, 'risk' AS source,
        len(list_filter(from_json(factors, '[{"available": "BOOLEAN"}]'), lambda f: f.available)) AS present,
        json_array_length(factors) AS total
    FROM analytics.risk
    UNION ALL
    SELECT user_id, day, 'recovery',
        len(list_filter(from_json(contributors, '[{"available": "BOOLEAN"}]'), lambda c: c.available)),
        json_array_length(contributors)
    FROM analytics.recovery
    UNION ALL
    SELECT user_id, day, 'illness',
        len(list_filter(from_json(signals, '[{"z": "DOUBLE"}]'), lambda s: s.z IS NOT NULL)),
        json_array_length(signals)
    FROM analytics.illness_watch
)
SELECT user_id, day, 'correlation' AS pattern_type,
    CASE x_metric
        WHEN 'sleep_score' THEN 'sleep_hrv_correlation'
        WHEN 'training_load' THEN 'training_recovery_lag'
        ELSE 'activity_sleep_correlation'
    END AS pattern_name,
    rho AS score,
    n / 90.0 AS confidence,
    CASE WHEN q_value < 0.01 THEN 'high' WHEN q_value < 0.05 THEN 'medium' ELSE 'low' END AS significance,
    to_json([x_metric, y_metric]) AS metrics_involved,
    n AS sample_count,
    to_json({'lag_days': lag_days, 'rho': rho, 'p_value': p_value, 'q_value': q_value,
        'n_effective': n_effective, 'strength': strength, 'direction': direction,
        'significant': significant}) AS details
FROM best_pair
WHERE rank_in_pair = 1
UNION ALL
SELECT r.user_id, r.day, 'composite', 'overtraining_risk', r.overtraining_score, a.present / a.total, r.level,
    to_json(['ln_rmssd', 'overnight_hr_bpm', 'sleep_debt', 'acwr_coupled']), a.present,
    to_json({'factors': json(r.factors), 'persistence_days': r.persistence_days})
FROM analytics.risk AS r
JOIN available AS a ON a.source = 'risk' AND a.user_id = r.user_id AND a.day = r.day
UNION ALL
SELECT r.user_id, r.day, 'composite', 'recovery_readiness', r.score, a.present / a.total, r.level,
    to_json(['ln_rmssd', 'overnight_hr_bpm', 'sleep_score']), a.present,
    to_json({'contributors': json(r.contributors)})
FROM analytics.recovery AS r
JOIN available AS a ON a.source = 'recovery' AND a.user_id = r.user_id AND a.day = r.day
UNION ALL
SELECT user_id, day, 'trend',
    CASE metric
        WHEN 'ln_rmssd' THEN 'hrv_trend' WHEN 'sleep_score' THEN 'sleep_trend' ELSE 'resting_hr_trend'
    END,
    pct_change_7d_vs_30d, n / 30.0, CASE WHEN meaningful THEN 'high' ELSE 'low' END,
    to_json([metric]), n,
    to_json({'window_days': window_days, 'mk_tau': mk_tau, 'p_value': p_value,
        'theil_sen_per_week': theil_sen_per_week, 'meaningful': meaningful, 'direction': direction,
        'polarity': polarity})
FROM analytics.trends
WHERE window_days = 30 AND metric IN ('ln_rmssd', 'sleep_score', 'overnight_hr_bpm')
UNION ALL
SELECT w.user_id, w.day, 'anomaly', 'illness_watch',
    len(list_filter(from_json(w.signals, '[{"fired": "BOOLEAN"}]'), lambda s: s.fired)),
    a.present / a.total, w.level,
    to_json(['overnight_hr_bpm', 'breathing_rate', 'ln_rmssd']), a.present,
    to_json({'flagged': w.flagged, 'signals': json(w.signals)})
FROM analytics.illness_watch AS w
JOIN available AS a ON a.source = 'illness' AND a.user_id = w.user_id AND a.day = w.day
"""

SERVING_VIEWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "analytics.patterns": (
        PATTERNS_SQL,
        ("analytics.correlations", "analytics.risk", "analytics.recovery", "analytics.trends",
         "analytics.illness_watch"),
    ),
}  # fmt: skip
"""view -> (its SELECT, over the snapshot's own tables; the tables it reads)."""


def serving_views_sql(present: set[str]) -> list[str]:
    """CREATE VIEW statements for the views whose tables are all in ``present`` (``schema.table`` names).

    Run on a connection to the snapshot file itself, so the views name its tables without a catalog and
    keep working whatever name a reader attaches the file under.
    """
    return [
        f"CREATE OR REPLACE VIEW {view} AS {select}"
        for view, (select, reads) in SERVING_VIEWS.items()
        if set(reads) <= present
    ]
