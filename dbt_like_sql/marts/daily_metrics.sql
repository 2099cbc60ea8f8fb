-- One row per user and calendar day: last night's sleep and Nightly Recharge (dated by the wake-up day), the
-- day's activity summary, the day's workouts, the day's continuous heart rate and Polar's daily cardio load,
-- side by side. Every day from the user's first to last day with any raw record gets a row, so downstream
-- windows count calendar days (docs/methods.md §1.1): a day without a stream has NULLs there, never a
-- carried-forward value. A cardio-load day that Polar marks LOAD_STATUS_NOT_AVAILABLE does not count as a day
-- with data (the endpoint answers one item per day for up to 180 days, before a new user's first record too),
-- though inside the span its status is shown. exercise_count, exercise_seconds, training_load (sum of the sessions' loads: Training
-- Load Pro cardio-load, else the legacy training_load) and cardio_load (cardio-load only) are 0 on days without
-- a workout, and count a workout that arrived both from AccessLink and from a Polar account export once
-- (marts/counted_exercises.sql); the polar_* columns are Polar's own daily cardio-load figures (polar_cardio_load, the day's load
-- as Polar summed it, next to strain, tolerance, their ratio and the status). hr_min_bpm, hr_avg_bpm,
-- hr_max_bpm and hr_sample_count summarise the day's continuous heart-rate samples, no-signal readings (0)
-- left out; hr_sample_count is NULL without a continuous-HR record and 0 when it had no reading. device_id is
-- the sleep's device, else the device of the day's first workout. Each stream is read through
-- staging.typed_slice: typed rows only, one per natural key, pre-filtered so a run types only the payloads near
-- its slice.
-- materialized: table
-- window_days: 0
-- grain: user_id, day
WITH sleep AS (
    SELECT * FROM staging.typed_slice('{{ ref("sleep") }}', $users, $first_day, $last_day)
),

recharge AS (
    SELECT * FROM staging.typed_slice('{{ ref("nightly_recharge") }}', $users, $first_day, $last_day)
),

activity AS (
    SELECT * FROM staging.typed_slice('{{ ref("activity") }}', $users, $first_day, $last_day)
),

heart_rate AS (
    SELECT * FROM staging.typed_slice('{{ ref("continuous_heart_rate") }}', $users, $first_day, $last_day)
),

polar_load AS (
    SELECT * FROM staging.typed_slice('{{ ref("cardio_load") }}', $users, $first_day, $last_day)
),

workouts AS (
    SELECT
        user_id,
        day,
        count(*) AS exercise_count,
        sum(coalesce(duration_seconds, 0) ORDER BY exercise_id) AS exercise_seconds,
        sum(coalesce(training_load, 0) ORDER BY exercise_id) AS training_load,
        sum(coalesce(cardio_load, 0) ORDER BY exercise_id) AS cardio_load,
        (list(device_id ORDER BY start_time_local, exercise_id) FILTER (WHERE device_id IS NOT NULL))[1]
            AS first_device_id
    FROM {{ ref('counted_exercises') }} AS counted
    GROUP BY user_id, day
),

observed AS (
    SELECT user_id, min(day) AS first_seen, max(day) AS last_seen
    FROM (
        SELECT user_id, day FROM {{ source('raw', 'sleep') }}
        UNION ALL
        SELECT user_id, day FROM {{ source('raw', 'nightly_recharge') }}
        UNION ALL
        SELECT user_id, day FROM {{ source('raw', 'activity') }}
        UNION ALL
        SELECT user_id, day FROM {{ source('raw', 'exercises') }}
        UNION ALL
        SELECT user_id, day FROM {{ source('raw', 'continuous_heart_rate') }}
        UNION ALL
        SELECT user_id, day FROM {{ source('raw', 'cardio_load') }}
        WHERE payload ->> 'cardio_load_status' IS DISTINCT FROM 'LOAD_STATUS_NOT_AVAILABLE'
    ) AS any_stream
    WHERE list_contains($users, user_id)
    GROUP BY user_id
),

spine AS (
    SELECT observed.user_id, CAST(calendar.day AS DATE) AS day
    FROM observed
    CROSS JOIN LATERAL generate_series(
        greatest(observed.first_seen, CAST($first_day AS DATE)),
        least(observed.last_seen, CAST($last_day AS DATE)),
        INTERVAL 1 DAY
    ) AS calendar (day)
)

SELECT
    spine.user_id,
    spine.day,
    sleep.sleep_start,
    sleep.sleep_end,
    sleep.sleep_seconds,
    sleep.light_sleep_seconds,
    sleep.deep_sleep_seconds,
    sleep.rem_sleep_seconds,
    sleep.sleep_score,
    sleep.continuity,
    sleep.interruptions,
    sleep.interruption_seconds,
    sleep.sleep_goal_seconds,
    sleep.heart_rate_avg_bpm AS sleep_hr_avg_bpm,
    sleep.heart_rate_min_bpm AS sleep_hr_min_bpm,
    sleep.heart_rate_max_bpm AS sleep_hr_max_bpm,
    sleep.unrecognized_sleep_seconds,
    sleep.short_interruption_seconds,
    sleep.long_interruption_seconds,
    sleep.sleep_cycles,
    sleep.continuity_class,
    sleep.sleep_charge,
    sleep.sleep_rating,
    sleep.group_duration_score,
    sleep.group_solidity_score,
    sleep.group_regeneration_score,
    recharge.hrv_rmssd_ms,
    recharge.ln_rmssd,
    recharge.overnight_hr_bpm,
    recharge.breathing_rate,
    recharge.ans_charge,
    recharge.nightly_recharge_status,
    recharge.ans_charge_status,
    recharge.beat_to_beat_ms,
    activity.steps,
    activity.active_calories,
    activity.total_calories,
    activity.active_seconds,
    activity.inactive_seconds,
    activity.distance_from_steps_m AS distance_m,
    activity.daily_activity_percent,
    activity.inactivity_alerts,
    coalesce(workouts.exercise_count, 0) AS exercise_count,
    coalesce(workouts.exercise_seconds, 0) AS exercise_seconds,
    coalesce(workouts.training_load, 0) AS training_load,
    coalesce(workouts.cardio_load, 0) AS cardio_load,
    heart_rate.hr_min_bpm,
    heart_rate.hr_avg_bpm,
    heart_rate.hr_max_bpm,
    heart_rate.hr_sample_count,
    polar_load.cardio_load AS polar_cardio_load,
    polar_load.cardio_load_ratio AS polar_cardio_load_ratio,
    polar_load.cardio_load_status AS polar_cardio_load_status,
    polar_load.strain AS polar_strain,
    polar_load.tolerance AS polar_tolerance,
    coalesce(sleep.device_id, workouts.first_device_id) AS device_id
FROM spine
LEFT JOIN sleep ON sleep.user_id = spine.user_id AND sleep.day = spine.day
LEFT JOIN recharge ON recharge.user_id = spine.user_id AND recharge.day = spine.day
LEFT JOIN activity ON activity.user_id = spine.user_id AND activity.day = spine.day
LEFT JOIN workouts ON workouts.user_id = spine.user_id AND workouts.day = spine.day
LEFT JOIN heart_rate ON heart_rate.user_id = spine.user_id AND heart_rate.day = spine.day
LEFT JOIN polar_load ON polar_load.user_id = spine.user_id AND polar_load.day = spine.day
