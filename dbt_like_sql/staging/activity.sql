-- Daily activity summaries from raw.activity, typed: one row per user and local day. The day is the date of
-- start_time, which real payloads send as the device's local midnight without a zone (docs/accesslink.md §6.2,
-- §6.3); a zoned start_time keeps the date written on it, as the sync client does.
-- ISO-8601 durations (PT7H22M, P1DT2H) become seconds; years and months are refused because their length is
-- undefined. total_calories includes the basal rate, active_calories does not. inactivity_alerts is the day's
-- inactivity_alert_count (the watch's "time to move" alerts).
-- A row that cannot be typed gets reject_reason (NULL when it typed fine) and is quarantined by daily_metrics.
-- Rows come from staging.raw_records (raw_day is the raw table's day, so a filter on it reaches the raw scan).
-- materialized: view
-- grain: user_id, day
WITH fields AS (
    SELECT
        user_id,
        raw_day,
        raw_payload,
        json_type(p) AS payload_type,
        p ->> 'start_time' AS start_text,
        json_type(p -> 'active_duration') AS active_type,
        p ->> 'active_duration' AS active_text,
        json_type(p -> 'inactive_duration') AS inactive_type,
        p ->> 'inactive_duration' AS inactive_text,
        json_type(p -> 'steps') AS steps_type,
        TRY_CAST(p ->> 'steps' AS DOUBLE) AS steps_num,
        json_type(p -> 'active_calories') AS active_kcal_type,
        TRY_CAST(p ->> 'active_calories' AS DOUBLE) AS active_kcal_num,
        json_type(p -> 'calories') AS kcal_type,
        TRY_CAST(p ->> 'calories' AS DOUBLE) AS kcal_num,
        json_type(p -> 'daily_activity') AS goal_type,
        TRY_CAST(p ->> 'daily_activity' AS DOUBLE) AS goal_num,
        json_type(p -> 'distance_from_steps') AS distance_type,
        TRY_CAST(p ->> 'distance_from_steps' AS DOUBLE) AS distance_num,
        json_type(p -> 'inactivity_alert_count') AS alerts_type,
        TRY_CAST(p ->> 'inactivity_alert_count' AS DOUBLE) AS alerts_num
    FROM staging.raw_records('{{ source("raw", "activity") }}')
),

parsed AS (
    SELECT
        *,
        staging.is_iso_datetime(start_text) AND TRY_CAST(substr(start_text, 1, 10) AS DATE) IS NOT NULL AS start_ok,
        staging.iso_duration_seconds(active_text) AS active_seconds,
        staging.iso_duration_seconds(inactive_text) AS inactive_seconds
    FROM fields
),

checked AS (
    SELECT
        *,
        NULLIF(concat_ws('; ',
            CASE WHEN payload_type IS DISTINCT FROM 'OBJECT' THEN 'payload: expected a JSON object' END,
            CASE WHEN NOT start_ok THEN 'start_time: expected an ISO date-time (local wall clock)' END,
            staging.invalid_reason(
                active_type, active_seconds IS NOT NULL,
                'active_duration: expected an ISO-8601 duration (PnDTnHnMnS)'
            ),
            staging.invalid_reason(
                inactive_type, inactive_seconds IS NOT NULL,
                'inactive_duration: expected an ISO-8601 duration (PnDTnHnMnS)'
            ),
            staging.invalid_reason(
                steps_type, staging.json_is_number(steps_type) AND steps_num = floor(steps_num) AND steps_num >= 0,
                'steps: expected an integer >= 0'
            ),
            staging.invalid_reason(
                active_kcal_type,
                staging.json_is_number(active_kcal_type)
                AND active_kcal_num = floor(active_kcal_num) AND active_kcal_num >= 0,
                'active_calories: expected an integer >= 0 kcal'
            ),
            staging.invalid_reason(
                kcal_type, staging.json_is_number(kcal_type) AND kcal_num = floor(kcal_num) AND kcal_num >= 0,
                'calories: expected an integer >= 0 kcal'
            ),
            staging.invalid_reason(
                goal_type, staging.json_is_number(goal_type) AND goal_num >= 0,
                'daily_activity: expected a number >= 0'
            ),
            staging.invalid_reason(
                distance_type, staging.json_is_number(distance_type) AND distance_num >= 0,
                'distance_from_steps: expected a number >= 0'
            ),
            staging.invalid_reason(
                alerts_type, staging.json_is_number(alerts_type) AND alerts_num = floor(alerts_num) AND alerts_num >= 0,
                'inactivity_alert_count: expected an integer >= 0'
            )
        ), '') AS reject_reason
    FROM parsed
)

SELECT
    user_id,
    coalesce(CASE WHEN start_ok THEN TRY_CAST(substr(start_text, 1, 10) AS DATE) END, raw_day) AS day,
    strftime(
        coalesce(CASE WHEN start_ok THEN TRY_CAST(substr(start_text, 1, 10) AS DATE) END, raw_day), '%Y-%m-%d'
    ) AS record_key,
    raw_day,
    TRY_CAST(staging.json_number(steps_type, steps_num) AS BIGINT) AS steps,
    TRY_CAST(staging.json_number(active_kcal_type, active_kcal_num) AS BIGINT) AS active_calories,
    TRY_CAST(staging.json_number(kcal_type, kcal_num) AS BIGINT) AS total_calories,
    active_seconds,
    inactive_seconds,
    staging.json_number(goal_type, goal_num) AS daily_activity_percent,
    staging.json_number(distance_type, distance_num) AS distance_from_steps_m,
    TRY_CAST(staging.json_number(alerts_type, alerts_num) AS BIGINT) AS inactivity_alerts,
    raw_payload,
    reject_reason
FROM checked
