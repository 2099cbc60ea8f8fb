-- The eight daily metrics that get rolling statistics and baselines, in long form: one row per user, day and
-- metric, the value as DOUBLE (NULL when the day has none), with the day's device. Written once and inlined
-- (ephemeral) into rolling_metrics, baselines and anomalies, which read it for the run's users from
-- $read_from (first_day - window_days) to $last_day. The metrics are ln_rmssd, hrv_rmssd_ms, sleep_score,
-- sleep_seconds, overnight_hr_bpm, breathing_rate, steps and training_load (0 on days without a workout).
-- materialized: ephemeral
-- grain: user_id, day, metric
SELECT daily.user_id, daily.day, daily.device_id, metric.name AS metric, metric.value
FROM {{ ref('daily_metrics') }} AS daily
CROSS JOIN LATERAL (
    VALUES
    ('ln_rmssd', CAST(daily.ln_rmssd AS DOUBLE)),
    ('hrv_rmssd_ms', CAST(daily.hrv_rmssd_ms AS DOUBLE)),
    ('sleep_score', CAST(daily.sleep_score AS DOUBLE)),
    ('sleep_seconds', CAST(daily.sleep_seconds AS DOUBLE)),
    ('overnight_hr_bpm', CAST(daily.overnight_hr_bpm AS DOUBLE)),
    ('breathing_rate', CAST(daily.breathing_rate AS DOUBLE)),
    ('steps', CAST(daily.steps AS DOUBLE)),
    ('training_load', CAST(daily.training_load AS DOUBLE))
) AS metric (name, value)
WHERE list_contains($users, daily.user_id) AND daily.day BETWEEN $read_from AND $last_day
