-- Workouts from raw.exercises, typed: one row per user and exercise id, dated by the local start date.
-- start_time is the watch's wall clock without a zone and start_time_utc = start_time - start_time_utc_offset
-- minutes (accesslink-v3.md §4.7, §9). A start_time that carries its own zone is converted to the local
-- clock with start_time_utc_offset when present, else its written clock is taken as local.
-- duration (ISO-8601, e.g. PT8239.604S) becomes seconds. training_load is the session's load used downstream:
-- Training Load Pro cardio-load (Polar's TRIMP-based load), else the legacy training_load field.
-- Sentinels become NULL: cardio-load -1.0, muscle-load -1.0, perceived-load 0.0, heart rates 0 (§11); both key
-- spellings of training_load_pro (cardio-load / cardio_load) are read. A row that cannot be typed gets
-- reject_reason (NULL when it typed fine) and is quarantined by daily_metrics.
-- raw_day is the raw table's day, exposed so a filter on it reaches the raw scan.
-- materialized: view
-- grain: user_id, exercise_id
WITH src AS (
    SELECT user_id, exercise_id, day AS raw_day, payload AS p, payload::VARCHAR AS raw_payload
    FROM {{ source('raw', 'exercises') }}
),

fields AS (
    SELECT
        user_id,
        exercise_id,
        raw_day,
        raw_payload,
        json_type(p) AS payload_type,
        p ->> 'start_time' AS start_text,
        json_type(p -> 'start_time_utc_offset') AS offset_type,
        TRY_CAST(p ->> 'start_time_utc_offset' AS DOUBLE) AS offset_num,
        json_type(p -> 'duration') AS duration_type,
        p ->> 'duration' AS duration_text,
        json_type(p -> 'device_id') AS device_type,
        p ->> 'device_id' AS device_text,
        json_type(p -> 'sport') AS sport_type,
        p ->> 'sport' AS sport_text,
        json_type(p -> 'detailed_sport_info') AS detailed_type,
        p ->> 'detailed_sport_info' AS detailed_text,
        json_type(p -> 'calories') AS kcal_type,
        TRY_CAST(p ->> 'calories' AS DOUBLE) AS kcal_num,
        json_type(p -> 'distance') AS distance_type,
        TRY_CAST(p ->> 'distance' AS DOUBLE) AS distance_num,
        json_type(p -> 'heart_rate') AS hr_object_type,
        json_type(p -> 'heart_rate' -> 'average') AS hr_avg_type,
        TRY_CAST(p -> 'heart_rate' ->> 'average' AS DOUBLE) AS hr_avg_num,
        json_type(p -> 'heart_rate' -> 'maximum') AS hr_max_type,
        TRY_CAST(p -> 'heart_rate' ->> 'maximum' AS DOUBLE) AS hr_max_num,
        json_type(p -> 'training_load') AS legacy_type,
        TRY_CAST(p ->> 'training_load' AS DOUBLE) AS legacy_num,
        json_type(p -> 'training_load_pro') AS pro_type,
        json_type(coalesce(p -> 'training_load_pro' -> 'cardio-load', p -> 'training_load_pro' -> 'cardio_load'))
            AS cardio_type,
        TRY_CAST(
            coalesce(p -> 'training_load_pro' ->> 'cardio-load', p -> 'training_load_pro' ->> 'cardio_load') AS DOUBLE
        ) AS cardio_num,
        json_type(coalesce(p -> 'training_load_pro' -> 'muscle-load', p -> 'training_load_pro' -> 'muscle_load'))
            AS muscle_type,
        TRY_CAST(
            coalesce(p -> 'training_load_pro' ->> 'muscle-load', p -> 'training_load_pro' ->> 'muscle_load') AS DOUBLE
        ) AS muscle_num,
        json_type(
            coalesce(p -> 'training_load_pro' -> 'perceived-load', p -> 'training_load_pro' -> 'perceived_load')
        ) AS perceived_type,
        TRY_CAST(
            coalesce(p -> 'training_load_pro' ->> 'perceived-load', p -> 'training_load_pro' ->> 'perceived_load')
            AS DOUBLE
        ) AS perceived_num
    FROM src
),

parsed AS (
    SELECT
        *,
        regexp_full_match(
            coalesce(start_text, ''), '\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?'
        ) AS start_shape_ok,
        TRY_CAST(regexp_replace(coalesce(start_text, ''), '(Z|[+-]\d{2}:?\d{2})$', '') AS TIMESTAMP) AS written_clock,
        regexp_extract(coalesce(start_text, ''), '(Z|[+-]\d{2}:?\d{2})$', 1) AS zone_text,
        CASE
            WHEN offset_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND offset_num = floor(offset_num)
                AND offset_num BETWEEN -720 AND 840
                THEN TRY_CAST(offset_num AS INTEGER)
        END AS payload_offset,
        regexp_extract(
            coalesce(duration_text, ''),
            '^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$',
            ['w', 'd', 'h', 'm', 's']
        ) AS duration_parts
    FROM fields
),

clocks AS (
    SELECT
        *,
        CASE
            WHEN zone_text = 'Z' THEN 0
            WHEN zone_text <> ''
                THEN (CASE WHEN zone_text[1] = '-' THEN -1 ELSE 1 END)
                * (TRY_CAST(substr(replace(zone_text, ':', ''), 2, 2) AS INTEGER) * 60
                    + TRY_CAST(substr(replace(zone_text, ':', ''), 4, 2) AS INTEGER))
        END AS written_offset,
        CASE
            WHEN duration_type = 'VARCHAR' AND NOT ends_with(duration_text, 'T')
                AND concat(duration_parts.w, duration_parts.d, duration_parts.h, duration_parts.m, duration_parts.s)
                <> ''
                THEN coalesce(TRY_CAST(NULLIF(duration_parts.w, '') AS DOUBLE), 0) * 604800
                + coalesce(TRY_CAST(NULLIF(duration_parts.d, '') AS DOUBLE), 0) * 86400
                + coalesce(TRY_CAST(NULLIF(duration_parts.h, '') AS DOUBLE), 0) * 3600
                + coalesce(TRY_CAST(NULLIF(duration_parts.m, '') AS DOUBLE), 0) * 60
                + coalesce(TRY_CAST(NULLIF(duration_parts.s, '') AS DOUBLE), 0)
        END AS duration_seconds
    FROM parsed
),

localized AS (
    SELECT
        *,
        CASE
            WHEN written_offset IS NULL THEN written_clock
            WHEN payload_offset IS NULL THEN written_clock
            ELSE written_clock - to_minutes(written_offset) + to_minutes(payload_offset)
        END AS start_time_local,
        CASE
            WHEN written_offset IS NOT NULL THEN written_clock - to_minutes(written_offset)
            WHEN payload_offset IS NOT NULL THEN written_clock - to_minutes(payload_offset)
        END AS start_time_utc,
        coalesce(payload_offset, written_offset) AS utc_offset_minutes
    FROM clocks
),

checked AS (
    SELECT
        *,
        NULLIF(concat_ws('; ',
            CASE WHEN payload_type IS DISTINCT FROM 'OBJECT' THEN 'payload: expected a JSON object' END,
            CASE
                WHEN NOT start_shape_ok OR written_clock IS NULL
                    THEN 'start_time: expected an ISO date-time (watch wall clock)'
            END,
            CASE
                WHEN offset_type <> 'NULL' AND payload_offset IS NULL
                    THEN 'start_time_utc_offset: expected whole minutes -720..840'
            END,
            CASE
                WHEN duration_type <> 'NULL' AND duration_seconds IS NULL
                    THEN 'duration: expected an ISO-8601 duration (PnDTnHnMnS)'
            END,
            CASE WHEN device_type NOT IN ('VARCHAR', 'NULL') THEN 'device_id: expected a string' END,
            CASE WHEN sport_type NOT IN ('VARCHAR', 'NULL') THEN 'sport: expected a string' END,
            CASE WHEN detailed_type NOT IN ('VARCHAR', 'NULL') THEN 'detailed_sport_info: expected a string' END,
            CASE
                WHEN kcal_type <> 'NULL' AND NOT (kcal_type IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                    AND kcal_num = floor(kcal_num) AND kcal_num >= 0)
                    THEN 'calories: expected an integer >= 0 kcal'
            END,
            CASE
                WHEN distance_type <> 'NULL' AND NOT (distance_type IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                    AND distance_num >= 0)
                    THEN 'distance: expected a number >= 0 m'
            END,
            CASE WHEN hr_object_type NOT IN ('OBJECT', 'NULL') THEN 'heart_rate: expected an object' END,
            CASE
                WHEN hr_avg_type <> 'NULL' AND NOT (hr_avg_type IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                    AND hr_avg_num = floor(hr_avg_num) AND (hr_avg_num = 0 OR hr_avg_num BETWEEN 20 AND 250))
                    THEN 'heart_rate.average: expected an integer 20..250 bpm (0 = no signal)'
            END,
            CASE
                WHEN hr_max_type <> 'NULL' AND NOT (hr_max_type IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                    AND hr_max_num = floor(hr_max_num) AND (hr_max_num = 0 OR hr_max_num BETWEEN 20 AND 250))
                    THEN 'heart_rate.maximum: expected an integer 20..250 bpm (0 = no signal)'
            END,
            CASE
                WHEN legacy_type <> 'NULL' AND NOT (legacy_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND legacy_num >= 0)
                    THEN 'training_load: expected a number >= 0'
            END,
            CASE WHEN pro_type NOT IN ('OBJECT', 'NULL') THEN 'training_load_pro: expected an object' END,
            CASE
                WHEN cardio_type <> 'NULL' AND NOT (cardio_type IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                    AND (cardio_num = -1 OR cardio_num >= 0))
                    THEN 'training_load_pro.cardio-load: expected a number >= 0 (-1 = n/a)'
            END,
            CASE
                WHEN muscle_type <> 'NULL' AND NOT (muscle_type IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                    AND (muscle_num = -1 OR muscle_num >= 0))
                    THEN 'training_load_pro.muscle-load: expected a number >= 0 (-1 = n/a)'
            END,
            CASE
                WHEN perceived_type <> 'NULL' AND NOT (perceived_type IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                    AND perceived_num >= 0)
                    THEN 'training_load_pro.perceived-load: expected a number >= 0'
            END
        ), '') AS reject_reason
    FROM localized
),

typed AS (
    SELECT
        *,
        CASE
            WHEN cardio_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND cardio_num >= 0 THEN cardio_num
        END AS cardio_load,
        CASE
            WHEN legacy_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND legacy_num >= 0 THEN legacy_num
        END AS legacy_training_load
    FROM checked
)

SELECT
    user_id,
    coalesce(CAST(start_time_local AS DATE), raw_day) AS day,
    exercise_id AS record_key,
    raw_day,
    exercise_id,
    CASE WHEN device_type = 'VARCHAR' THEN device_text END AS device_id,
    CASE WHEN sport_type = 'VARCHAR' THEN sport_text END AS sport,
    CASE WHEN detailed_type = 'VARCHAR' THEN detailed_text END AS detailed_sport_info,
    start_time_local,
    start_time_utc,
    utc_offset_minutes,
    duration_seconds,
    CASE WHEN kcal_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN TRY_CAST(kcal_num AS BIGINT) END AS calories,
    CASE WHEN distance_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN distance_num END AS distance_m,
    CASE WHEN hr_avg_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND hr_avg_num > 0 THEN hr_avg_num END AS hr_avg_bpm,
    CASE WHEN hr_max_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND hr_max_num > 0 THEN hr_max_num END AS hr_max_bpm,
    cardio_load,
    CASE WHEN muscle_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND muscle_num >= 0 THEN muscle_num END AS muscle_load,
    CASE
        WHEN perceived_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND perceived_num > 0 THEN perceived_num
    END AS perceived_load,
    legacy_training_load,
    coalesce(cardio_load, legacy_training_load) AS training_load,
    raw_payload,
    reject_reason
FROM typed
