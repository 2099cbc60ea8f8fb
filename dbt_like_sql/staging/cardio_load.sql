-- Polar's daily cardio load from raw.cardio_load, typed: one row per user and day, dated by Polar's `date`.
-- cardio_load is the day's training impulse (TRIMP) sum, strain its 7-day and tolerance its 28-day mean,
-- cardio_load_ratio = strain / tolerance, and the five levels are the thresholds the day's load is judged
-- against (docs/accesslink.md §5.4). AccessLink answers one item per day, unavailable days included: such a
-- day has status LOAD_STATUS_NOT_AVAILABLE, -1.0 for load, tolerance and ratio, and 0.0 for strain and the
-- levels (docs/accesslink.md §7). Sentinels become NULL: -1.0 in cardio_load, tolerance and cardio_load_ratio,
-- and on a not-available day strain and the levels; the status is kept as sent. The checks mirror the sync
-- client's; a row that cannot be typed gets reject_reason (NULL when it typed fine) and is quarantined by
-- daily_metrics.
-- Rows come from staging.raw_records (raw_day is the raw table's day, so a filter on it reaches the raw scan).
-- materialized: view
-- grain: user_id, day
WITH fields AS (
    SELECT
        user_id,
        raw_day,
        raw_payload,
        json_type(p) AS payload_type,
        p ->> 'date' AS date_text,
        json_type(p -> 'cardio_load_status') AS status_type,
        p ->> 'cardio_load_status' AS status_text,
        json_type(p -> 'cardio_load') AS load_type,
        TRY_CAST(p ->> 'cardio_load' AS DOUBLE) AS load_num,
        json_type(p -> 'strain') AS strain_type,
        TRY_CAST(p ->> 'strain' AS DOUBLE) AS strain_num,
        json_type(p -> 'tolerance') AS tolerance_type,
        TRY_CAST(p ->> 'tolerance' AS DOUBLE) AS tolerance_num,
        json_type(p -> 'cardio_load_ratio') AS ratio_type,
        TRY_CAST(p ->> 'cardio_load_ratio' AS DOUBLE) AS ratio_num,
        json_type(p -> 'cardio_load_level') AS levels_type,
        list_transform(
            ['very_low', 'low', 'medium', 'high', 'very_high'],
            lambda level: {
                'value_type': json_type(p -> 'cardio_load_level' -> level),
                'value': TRY_CAST(p -> 'cardio_load_level' ->> level AS DOUBLE)
            }
        ) AS levels
    FROM staging.raw_records('{{ source("raw", "cardio_load") }}')
),

checked AS (
    SELECT
        *,
        staging.is_iso_date(date_text) AS date_ok,
        status_text IS DISTINCT FROM 'LOAD_STATUS_NOT_AVAILABLE' AS available,
        NULLIF(concat_ws('; ',
            CASE WHEN payload_type IS DISTINCT FROM 'OBJECT' THEN 'payload: expected a JSON object' END,
            CASE WHEN NOT staging.is_iso_date(date_text) THEN 'date: expected YYYY-MM-DD' END,
            staging.invalid_reason(status_type, status_type = 'VARCHAR', 'cardio_load_status: expected a string'),
            staging.invalid_reason(
                load_type, staging.json_is_number(load_type) AND (load_num = -1 OR load_num >= 0),
                'cardio_load: expected a number >= 0 (-1 = not available)'
            ),
            CASE
                WHEN status_text IS DISTINCT FROM 'LOAD_STATUS_NOT_AVAILABLE'
                    THEN staging.invalid_reason(
                        strain_type, staging.json_is_number(strain_type) AND strain_num >= 0,
                        'strain: expected a number >= 0'
                    )
            END,
            staging.invalid_reason(
                tolerance_type,
                staging.json_is_number(tolerance_type) AND (tolerance_num = -1 OR tolerance_num >= 0),
                'tolerance: expected a number >= 0 (-1 = not available)'
            ),
            staging.invalid_reason(
                ratio_type, staging.json_is_number(ratio_type) AND (ratio_num = -1 OR ratio_num >= 0),
                'cardio_load_ratio: expected a number >= 0 (-1 = not available)'
            ),
            staging.invalid_reason(levels_type, levels_type = 'OBJECT', 'cardio_load_level: expected an object'),
            CASE
                WHEN levels_type = 'OBJECT' AND status_text IS DISTINCT FROM 'LOAD_STATUS_NOT_AVAILABLE'
                    AND NOT list_bool_and(list_transform(
                        levels, lambda level: staging.json_is_number(level.value_type) AND level.value >= 0
                    ))
                    THEN 'cardio_load_level: expected very_low, low, medium, high and very_high as numbers >= 0'
            END
        ), '') AS reject_reason
    FROM fields
)

SELECT
    user_id,
    coalesce(CASE WHEN date_ok THEN TRY_CAST(date_text AS DATE) END, raw_day) AS day,
    coalesce(CASE WHEN date_ok THEN date_text END, strftime(raw_day, '%Y-%m-%d')) AS record_key,
    raw_day,
    CASE WHEN status_type = 'VARCHAR' THEN status_text END AS cardio_load_status,
    CASE WHEN staging.json_is_number(load_type) AND load_num >= 0 THEN load_num END AS cardio_load,
    CASE WHEN available AND staging.json_is_number(strain_type) AND strain_num >= 0 THEN strain_num END AS strain,
    CASE WHEN staging.json_is_number(tolerance_type) AND tolerance_num >= 0 THEN tolerance_num END AS tolerance,
    CASE WHEN staging.json_is_number(ratio_type) AND ratio_num >= 0 THEN ratio_num END AS cardio_load_ratio,
    CASE WHEN available AND staging.json_is_number(levels[1].value_type) THEN levels[1].value END AS level_very_low,
    CASE WHEN available AND staging.json_is_number(levels[2].value_type) THEN levels[2].value END AS level_low,
    CASE WHEN available AND staging.json_is_number(levels[3].value_type) THEN levels[3].value END AS level_medium,
    CASE WHEN available AND staging.json_is_number(levels[4].value_type) THEN levels[4].value END AS level_high,
    CASE WHEN available AND staging.json_is_number(levels[5].value_type) THEN levels[5].value END AS level_very_high,
    raw_payload,
    reject_reason
FROM checked
