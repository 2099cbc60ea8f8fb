-- HRV status, Plews/Buchheit style: one row per user and day. ln_rmssd_7d is the mean of ln(rMSSD) over the
-- 7 calendar days [day - 6, day], reported when >= 3 nights have a value (Plews et al. 2014: >= 3 nights a
-- week match 7); cv_7d = 100 * SD / mean of the same nights (Plews et al. 2012). The normal band is
-- baseline_mean +/- 0.5 * baseline_sd of ln(rMSSD) over the 60 days that precede and exclude that week,
-- [day - 66, day - 7], reported when >= 14 nights have a value (the smallest worthwhile change, Plews 2013;
-- Vesterinen 2016; HRV4Training's 60-day normal range; docs/methods.md §6). As in baselines, a device
-- switch starts a new reference: only nights from the day's device (latest non-NULL device_id in
-- [day - 66, day]) or with no device recorded count. SDs are sample SDs (n - 1).
-- status: below (ln_rmssd_7d < normal_low), above (> normal_high), within, or insufficient when either the
-- week (< 3 nights) or the reference (< 14 nights) is too thin.
-- materialized: table
-- window_days: 66
-- grain: user_id, day
WITH daily AS (
    SELECT user_id, day, ln_rmssd, device_id
    FROM {{ ref('daily_metrics') }}
    WHERE list_contains($users, user_id) AND day BETWEEN $read_from AND $last_day
),

devices AS (
    SELECT
        user_id,
        day,
        last_value(device_id IGNORE NULLS) OVER (
            PARTITION BY user_id ORDER BY day RANGE BETWEEN INTERVAL 66 DAYS PRECEDING AND CURRENT ROW
        ) AS baseline_device
    FROM daily
),

targets AS (
    SELECT *
    FROM devices
    WHERE day BETWEEN $first_day AND $last_day
),

-- Self-joins with ordered aggregates rather than window frames, so a day's numbers do not depend on where
-- the run's read range starts (window frames sum in an order that does).
weekly AS (
    SELECT
        targets.user_id,
        targets.day,
        avg(past.ln_rmssd ORDER BY past.day) AS week_mean,
        stddev_samp(past.ln_rmssd ORDER BY past.day) AS week_sd,
        count(past.ln_rmssd) AS n_7d
    FROM targets
    LEFT JOIN daily AS past
        ON past.user_id = targets.user_id AND past.day BETWEEN targets.day - 6 AND targets.day
    GROUP BY targets.user_id, targets.day
),

reference AS (
    SELECT
        targets.user_id,
        targets.day,
        count(past.ln_rmssd) AS n_baseline,
        avg(past.ln_rmssd ORDER BY past.day) AS baseline_mean,
        stddev_samp(past.ln_rmssd ORDER BY past.day) AS baseline_sd
    FROM targets
    INNER JOIN daily AS past
        ON
            past.user_id = targets.user_id
            AND past.day BETWEEN targets.day - 66 AND targets.day - 7
            AND past.ln_rmssd IS NOT NULL
            AND (targets.baseline_device IS NULL OR past.device_id IS NULL OR past.device_id = targets.baseline_device)
    GROUP BY targets.user_id, targets.day
),

banded AS (
    SELECT
        targets.user_id,
        targets.day,
        CASE WHEN weekly.n_7d >= 3 THEN weekly.week_mean END AS ln_rmssd_7d,
        weekly.n_7d,
        CASE WHEN weekly.n_7d >= 3 THEN 100 * weekly.week_sd / weekly.week_mean END AS cv_7d,
        coalesce(reference.n_baseline, 0) AS n_baseline,
        reference.baseline_mean,
        reference.baseline_sd,
        CASE
            WHEN reference.n_baseline >= 14 THEN reference.baseline_mean - 0.5 * reference.baseline_sd
        END AS normal_low,
        CASE
            WHEN reference.n_baseline >= 14 THEN reference.baseline_mean + 0.5 * reference.baseline_sd
        END AS normal_high
    FROM targets
    INNER JOIN weekly ON weekly.user_id = targets.user_id AND weekly.day = targets.day
    LEFT JOIN reference ON reference.user_id = targets.user_id AND reference.day = targets.day
)

SELECT
    user_id,
    day,
    ln_rmssd_7d,
    n_7d,
    normal_low,
    normal_high,
    cv_7d,
    CASE
        WHEN ln_rmssd_7d IS NULL OR normal_low IS NULL THEN 'insufficient'
        WHEN ln_rmssd_7d < normal_low THEN 'below'
        WHEN ln_rmssd_7d > normal_high THEN 'above'
        ELSE 'within'
    END AS status,
    n_baseline,
    baseline_mean,
    baseline_sd
FROM banded
