-- One row per user and calendar day: last night's sleep and Nightly Recharge (dated by the wake-up day), the
-- day's activity summary and the day's workouts, side by side. Every day from the user's first to last day
-- with any raw record gets a row, so downstream windows count calendar days (docs/methods.md §1.1):
-- a day without a stream has NULLs there, never a carried-forward value. exercise_count, exercise_seconds,
-- training_load (sum of the sessions' loads: Training Load Pro cardio-load, else the legacy training_load)
-- and cardio_load (cardio-load only) are 0 on days without a workout. device_id is the sleep's device, else
-- the device of the day's first workout. Each stream is read through staging.typed_slice: typed rows only,
-- one per natural key, pre-filtered so a run types only the payloads near its slice.
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
    FROM staging.typed_slice('{{ ref("exercises") }}', $users, $first_day, $last_day)
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
    recharge.hrv_rmssd_ms,
    recharge.ln_rmssd,
    recharge.overnight_hr_bpm,
    recharge.breathing_rate,
    recharge.ans_charge,
    recharge.nightly_recharge_status,
    activity.steps,
    activity.active_calories,
    activity.total_calories,
    coalesce(workouts.exercise_count, 0) AS exercise_count,
    coalesce(workouts.exercise_seconds, 0) AS exercise_seconds,
    coalesce(workouts.training_load, 0) AS training_load,
    coalesce(workouts.cardio_load, 0) AS cardio_load,
    coalesce(sleep.device_id, workouts.first_device_id) AS device_id
FROM spine
LEFT JOIN sleep ON sleep.user_id = spine.user_id AND sleep.day = spine.day
LEFT JOIN recharge ON recharge.user_id = spine.user_id AND recharge.day = spine.day
LEFT JOIN activity ON activity.user_id = spine.user_id AND activity.day = spine.day
LEFT JOIN workouts ON workouts.user_id = spine.user_id AND workouts.day = spine.day
