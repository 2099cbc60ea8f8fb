-- Rolling 7/30/90-day statistics: one row per user, day, metric and window. The window is calendar days
-- [day - window_days + 1, day], the day itself included (docs/methods.md §3: calendar windows, not the
-- last N rows). NULL values are excluded, never zero-filled; n counts the non-NULL values and coverage = n /
-- window_days. mean is NULL when n = 0, sd (sample SD, n - 1 denominator) when n < 2. training_load is 0 on
-- days without a workout (daily_metrics), so its means count rest days as zero load.
-- Metrics: the eight of metric_values, read 89 days back for the 90-day window.
-- materialized: table
-- window_days: 89
-- grain: user_id, day, metric, window_days
WITH long AS (
    SELECT * FROM {{ ref('metric_values') }}
),

targets AS (
    SELECT user_id, day, metric
    FROM long
    WHERE day BETWEEN $first_day AND $last_day
),

window_lengths (window_days) AS (
    VALUES (7), (30), (90)
),

-- A self-join with ordered aggregates rather than window frames: the result then depends only on the
-- values in the window, not on where the read range starts, so any slice recomputes bit-identical rows.
stats AS (
    SELECT
        targets.user_id,
        targets.day,
        targets.metric,
        window_lengths.window_days,
        avg(past.value ORDER BY past.day) AS mean,
        stddev_samp(past.value ORDER BY past.day) AS sd,
        count(past.value) AS n
    FROM targets
    INNER JOIN long AS past
        ON
            past.user_id = targets.user_id
            AND past.metric = targets.metric
            AND past.day BETWEEN targets.day - 89 AND targets.day
            AND past.value IS NOT NULL
    INNER JOIN window_lengths ON past.day > targets.day - window_lengths.window_days
    GROUP BY targets.user_id, targets.day, targets.metric, window_lengths.window_days
)

SELECT
    targets.user_id,
    targets.day,
    targets.metric,
    window_lengths.window_days,
    stats.mean,
    stats.sd,
    coalesce(stats.n, 0) AS n,
    coalesce(stats.n, 0) / window_lengths.window_days AS coverage
FROM targets
CROSS JOIN window_lengths
LEFT JOIN stats
    ON
        stats.user_id = targets.user_id
        AND stats.day = targets.day
        AND stats.metric = targets.metric
        AND stats.window_days = window_lengths.window_days
