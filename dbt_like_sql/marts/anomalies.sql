-- Days whose value falls outside its own trailing baseline's Tukey fences (Tukey 1977; docs/methods.md
-- §5): one row per user, day and metric that is anomalous; normal days have no row. warning = outside the
-- 1.5 x spread fences, critical = outside the 3 x spread fences, where spread = greatest(IQR, the metric's
-- minimum IQR) as computed by baselines, so IQR = 0 never divides by zero or flags every small change.
-- direction is the side of the fence crossed (above / below), not the side of the mean. Only days whose
-- baseline status is ready (n >= 21) or partial (n 7..20) are tested.
-- robust_z = (value - baseline median) / robust_sd (1.4826 * MAD, or spread / 1.349 when MAD = 0;
-- Iglewicz & Hoaglin 1993). deviation_pct = 100 * (value - median) / |median|, NULL when the median is 0.
-- Metrics tested: ln_rmssd (HRV is judged on the log scale, §2), overnight_hr_bpm, breathing_rate,
-- sleep_seconds, steps. hrv_rmssd_ms (same signal as ln_rmssd), sleep_score (a bounded, skewed score) and
-- training_load (zero-inflated) keep their baselines but are not fenced (§5.1).
-- materialized: table
-- window_days: 0
-- grain: user_id, day, metric
WITH observed AS (
    SELECT user_id, day, metric, value
    FROM {{ ref('metric_values') }}
    WHERE
        metric IN ('ln_rmssd', 'overnight_hr_bpm', 'breathing_rate', 'sleep_seconds', 'steps')
        AND value IS NOT NULL
),

tested AS (
    SELECT
        observed.user_id,
        observed.day,
        observed.metric,
        observed.value,
        baselines.median,
        baselines.robust_sd,
        baselines.lower_warning,
        baselines.upper_warning,
        baselines.lower_critical,
        baselines.upper_critical
    FROM observed
    INNER JOIN {{ ref('baselines') }} AS baselines
        ON
            baselines.user_id = observed.user_id
            AND baselines.day = observed.day
            AND baselines.metric = observed.metric
    WHERE baselines.status IN ('ready', 'partial')
)

SELECT
    user_id,
    day,
    metric,
    value,
    CASE WHEN value < lower_critical OR value > upper_critical THEN 'critical' ELSE 'warning' END AS severity,
    CASE WHEN value < lower_warning THEN 'below' ELSE 'above' END AS direction,
    (value - median) / robust_sd AS robust_z,
    CASE WHEN median <> 0 THEN 100 * (value - median) / abs(median) END AS deviation_pct,
    median AS baseline_median
FROM tested
WHERE value < lower_warning OR value > upper_warning
