-- Daily activity summaries from raw.activity, typed: one row per user and local day. The day is the date of
-- start_time, which real payloads send as the device's local midnight without a zone (accesslink-v3.md §4.5,
-- §9); a zoned start_time keeps the date written on it, as the sync client does.
-- ISO-8601 durations (PT7H22M, P1DT2H) become seconds; years and months are refused because their length is
-- undefined. total_calories includes the basal rate, active_calories does not.
-- A row that cannot be typed gets reject_reason (NULL when it typed fine) and is quarantined by daily_metrics.
-- raw_day is the raw table's day, exposed so a filter on it reaches the raw scan.
-- materialized: view
-- grain: user_id, day
WITH src AS (
    SELECT user_id, day AS raw_day, payload AS p, payload::VARCHAR AS raw_payload
    FROM {{ source('raw', 'activity') }}
),

fields AS (
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
        TRY_CAST(p ->> 'distance_from_steps' AS DOUBLE) AS distance_num
    FROM src
),

parsed AS (
    SELECT
        *,
        regexp_full_match(
            coalesce(start_text, ''), '\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?'
        ) AND TRY_CAST(substr(start_text, 1, 10) AS DATE) IS NOT NULL AS start_ok,
        regexp_extract(
            coalesce(active_text, ''),
            '^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$',
            ['w', 'd', 'h', 'm', 's']
        ) AS active_parts,
        regexp_extract(
            coalesce(inactive_text, ''),
            '^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$',
            ['w', 'd', 'h', 'm', 's']
        ) AS inactive_parts
    FROM fields
),

durations AS (
    SELECT
        *,
        CASE
            WHEN active_type = 'VARCHAR' AND NOT ends_with(active_text, 'T')
                AND concat(active_parts.w, active_parts.d, active_parts.h, active_parts.m, active_parts.s) <> ''
                THEN coalesce(TRY_CAST(NULLIF(active_parts.w, '') AS DOUBLE), 0) * 604800
                + coalesce(TRY_CAST(NULLIF(active_parts.d, '') AS DOUBLE), 0) * 86400
                + coalesce(TRY_CAST(NULLIF(active_parts.h, '') AS DOUBLE), 0) * 3600
                + coalesce(TRY_CAST(NULLIF(active_parts.m, '') AS DOUBLE), 0) * 60
                + coalesce(TRY_CAST(NULLIF(active_parts.s, '') AS DOUBLE), 0)
        END AS active_seconds,
        CASE
            WHEN inactive_type = 'VARCHAR' AND NOT ends_with(inactive_text, 'T')
                AND concat(inactive_parts.w, inactive_parts.d, inactive_parts.h, inactive_parts.m, inactive_parts.s)
                <> ''
                THEN coalesce(TRY_CAST(NULLIF(inactive_parts.w, '') AS DOUBLE), 0) * 604800
                + coalesce(TRY_CAST(NULLIF(inactive_parts.d, '') AS DOUBLE), 0) * 86400
                + coalesce(TRY_CAST(NULLIF(inactive_parts.h, '') AS DOUBLE), 0) * 3600
                + coalesce(TRY_CAST(NULLIF(inactive_parts.m, '') AS DOUBLE), 0) * 60
                + coalesce(TRY_CAST(NULLIF(inactive_parts.s, '') AS DOUBLE), 0)
        END AS inactive_seconds
    FROM parsed
),

checked AS (
    SELECT
        *,
        NULLIF(concat_ws('; ',
            CASE WHEN payload_type IS DISTINCT FROM 'OBJECT' THEN 'payload: expected a JSON object' END,
            CASE WHEN NOT start_ok THEN 'start_time: expected an ISO date-time (local wall clock)' END,
            CASE
                WHEN active_type <> 'NULL' AND active_seconds IS NULL
                    THEN 'active_duration: expected an ISO-8601 duration (PnDTnHnMnS)'
            END,
            CASE
                WHEN inactive_type <> 'NULL' AND inactive_seconds IS NULL
                    THEN 'inactive_duration: expected an ISO-8601 duration (PnDTnHnMnS)'
            END,
            CASE
                WHEN steps_type <> 'NULL' AND NOT (steps_type IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                    AND steps_num = floor(steps_num) AND steps_num >= 0)
                    THEN 'steps: expected an integer >= 0'
            END,
            CASE
                WHEN active_kcal_type <> 'NULL' AND NOT (active_kcal_type IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                    AND active_kcal_num = floor(active_kcal_num) AND active_kcal_num >= 0)
                    THEN 'active_calories: expected an integer >= 0 kcal'
            END,
            CASE
                WHEN kcal_type <> 'NULL' AND NOT (kcal_type IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                    AND kcal_num = floor(kcal_num) AND kcal_num >= 0)
                    THEN 'calories: expected an integer >= 0 kcal'
            END,
            CASE
                WHEN goal_type <> 'NULL' AND NOT (goal_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND goal_num >= 0)
                    THEN 'daily_activity: expected a number >= 0'
            END,
            CASE
                WHEN distance_type <> 'NULL' AND NOT (distance_type IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                    AND distance_num >= 0)
                    THEN 'distance_from_steps: expected a number >= 0'
            END
        ), '') AS reject_reason
    FROM durations
)

SELECT
    user_id,
    coalesce(CASE WHEN start_ok THEN TRY_CAST(substr(start_text, 1, 10) AS DATE) END, raw_day) AS day,
    strftime(
        coalesce(CASE WHEN start_ok THEN TRY_CAST(substr(start_text, 1, 10) AS DATE) END, raw_day), '%Y-%m-%d'
    ) AS record_key,
    raw_day,
    CASE WHEN steps_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN TRY_CAST(steps_num AS BIGINT) END AS steps,
    CASE
        WHEN active_kcal_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN TRY_CAST(active_kcal_num AS BIGINT)
    END AS active_calories,
    CASE WHEN kcal_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN TRY_CAST(kcal_num AS BIGINT) END AS total_calories,
    active_seconds,
    inactive_seconds,
    CASE WHEN goal_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN goal_num END AS daily_activity_percent,
    CASE WHEN distance_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN distance_num END AS distance_from_steps_m,
    raw_payload,
    reject_reason
FROM checked
