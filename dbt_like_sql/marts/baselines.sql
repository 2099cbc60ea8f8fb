-- Personal baselines: one row per user, day and metric, describing the trailing 60 calendar days
-- [day - 60, day - 1]. The day under test is EXCLUDED, so a bad night cannot soften its own fences
-- (docs/methods.md §4.1: trailing 60 d excluding the day). Values come from daily_metrics, NULLs excluded.
-- Device segments (§1.5): when the window holds a device id, only days measured with the day's device (the most
-- recent non-NULL device_id in [day - 60, day]) or with no device recorded count, so a device switch starts a
-- new baseline instead of comparing two sensors.
-- Quantiles use ONE method everywhere: linear interpolation between order statistics (Hyndman-Fan type 7;
-- DuckDB quantile_cont, numpy.percentile's default), q1 = 25 %, median = 50 %, q3 = 75 %, iqr = q3 - q1.
-- mad = median(|x - median|) (unscaled); sd is the sample SD (n - 1). Tukey fences (Tukey 1977): warning =
-- q1 - 1.5 * spread / q3 + 1.5 * spread, critical = q1 - 3 * spread / q3 + 3 * spread, where spread =
-- greatest(iqr, the metric's minimum IQR) so a constant history (IQR = 0) does not flag every small change.
-- robust_sd = 1.4826 * mad (Iglewicz & Hoaglin 1993), or spread / 1.349 when mad = 0; never 0.
-- status: ready n >= 21, partial 7..20, insufficient < 7 (polar-flow-server's thresholds, §4.5).
-- materialized: table
-- window_days: 60
-- grain: user_id, day, metric
WITH metric_values AS (
    SELECT * FROM {{ ref('metric_values') }}
),

devices AS (
    SELECT
        user_id,
        day,
        last_value(device_id IGNORE NULLS) OVER (
            PARTITION BY user_id ORDER BY day RANGE BETWEEN INTERVAL 60 DAYS PRECEDING AND CURRENT ROW
        ) AS baseline_device
    FROM (SELECT DISTINCT user_id, day, device_id FROM metric_values) AS daily
),

long AS (
    SELECT metric_values.*, devices.baseline_device
    FROM metric_values
    INNER JOIN devices ON devices.user_id = metric_values.user_id AND devices.day = metric_values.day
),

minimum_iqr (metric, min_iqr) AS (
    VALUES
    ('ln_rmssd', 0.05),
    ('hrv_rmssd_ms', 3.0),
    ('sleep_score', 3.0),
    ('sleep_seconds', 900.0),
    ('overnight_hr_bpm', 2.0),
    ('breathing_rate', 0.5),
    ('steps', 500.0),
    ('training_load', 10.0)
),

targets AS (
    SELECT user_id, day, metric, baseline_device
    FROM long
    WHERE day BETWEEN $first_day AND $last_day
),

window_values AS (
    SELECT targets.user_id, targets.day, targets.metric, past.day AS past_day, past.value
    FROM targets
    INNER JOIN long AS past
        ON
            past.user_id = targets.user_id
            AND past.metric = targets.metric
            AND past.day BETWEEN targets.day - 60 AND targets.day - 1
            AND past.value IS NOT NULL
            AND (
                targets.baseline_device IS NULL
                OR past.device_id IS NULL
                OR past.device_id = targets.baseline_device
            )
),

stats AS (
    SELECT
        user_id,
        day,
        metric,
        count(value) AS n,
        quantile_cont(value, 0.5) AS median,
        quantile_cont(value, 0.25) AS q1,
        quantile_cont(value, 0.75) AS q3,
        avg(value ORDER BY past_day) AS mean,
        stddev_samp(value ORDER BY past_day) AS sd,
        mad(value) AS mad
    FROM window_values
    GROUP BY user_id, day, metric
),

spread AS (
    SELECT
        targets.user_id,
        targets.day,
        targets.metric,
        coalesce(stats.n, 0) AS n,
        stats.median,
        stats.q1,
        stats.q3,
        stats.q3 - stats.q1 AS iqr,
        stats.mean,
        stats.sd,
        stats.mad,
        greatest(stats.q3 - stats.q1, minimum_iqr.min_iqr) AS fence_spread
    FROM targets
    INNER JOIN minimum_iqr ON minimum_iqr.metric = targets.metric
    LEFT JOIN stats ON stats.user_id = targets.user_id AND stats.day = targets.day AND stats.metric = targets.metric
)

SELECT
    user_id,
    day,
    metric,
    60 AS window_days,
    n,
    median,
    q1,
    q3,
    iqr,
    mean,
    sd,
    mad,
    CASE WHEN n = 0 THEN NULL WHEN mad > 0 THEN 1.4826 * mad ELSE fence_spread / 1.349 END AS robust_sd,
    q1 - 1.5 * fence_spread AS lower_warning,
    q3 + 1.5 * fence_spread AS upper_warning,
    q1 - 3.0 * fence_spread AS lower_critical,
    q3 + 3.0 * fence_spread AS upper_critical,
    CASE WHEN n >= 21 THEN 'ready' WHEN n >= 7 THEN 'partial' ELSE 'insufficient' END AS status
FROM spread
