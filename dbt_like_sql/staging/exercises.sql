-- Workouts from raw.exercises, typed: one row per user and exercise id, dated by the local start date.
-- start_time is the watch's wall clock without a zone and start_time_utc = start_time - start_time_utc_offset
-- minutes (docs/accesslink.md §6.2, §6.3). A start_time that carries its own zone is converted to the local
-- clock with start_time_utc_offset when present, else its written clock is taken as local.
-- duration (ISO-8601, e.g. PT8239.604S) becomes seconds. training_load is the session's load used downstream:
-- Training Load Pro cardio-load (Polar's TRIMP-based load), else the legacy training_load field.
-- Sentinels become NULL: cardio-load -1.0, muscle-load -1.0, perceived-load 0.0, heart rates 0 (docs/accesslink.md §7); both key
-- spellings of training_load_pro (cardio-load / cardio_load) are read, and so are both of running_index and
-- of the heart-rate zone keys (lower_limit / lower-limit ...; docs/accesslink.md §5.4). heart_rate_zones is
-- the zones as JSON text, ordered by index: [{"index", "lower_limit_bpm", "upper_limit_bpm", "in_zone_seconds"}].
-- has_samples says whether the payload carries sample series, has_route is Polar's flag that the workout
-- recorded a GPS route. AccessLink sends no ascent or descent: ascent_m and descent_m are summed from the
-- altitude series (sample type 3, either key spelling; sensor gaps skipped) with a 1 m dead band, so barometer
-- noise below a metre does not add up: a rise or fall counts once the altitude has moved at least 1 m from the
-- last level counted, and is then counted from there. NULL without an altitude series. A row that cannot be
-- typed gets reject_reason (NULL when it typed fine) and is quarantined by the marts that read it.
-- source says who wrote the row: 'accesslink' (the sync) or 'export' (polar-flow import of a Polar account
-- export, exercise_id export:<sha1>). The same workout can arrive both ways; this view keeps both rows, and the
-- marts count it once through the ephemeral model counted_exercises (docs/polar-export.md, "Workouts from both
-- sources").
-- Rows come from staging.raw_records (raw_day is the raw table's day, so a filter on it reaches the raw scan).
-- materialized: view
-- grain: user_id, exercise_id
WITH fields AS (
    SELECT
        user_id,
        exercise_id,
        raw_day,
        source,
        raw_payload,
        json_type(p) AS payload_type,
        v[1] ->> '$' AS start_text,
        json_type(v[2]) AS offset_type,
        TRY_CAST(v[2] ->> '$' AS DOUBLE) AS offset_num,
        json_type(v[3]) AS duration_type,
        v[3] ->> '$' AS duration_text,
        json_type(v[4]) AS device_type,
        v[4] ->> '$' AS device_text,
        json_type(v[5]) AS sport_type,
        v[5] ->> '$' AS sport_text,
        json_type(v[6]) AS detailed_type,
        v[6] ->> '$' AS detailed_text,
        json_type(v[7]) AS kcal_type,
        TRY_CAST(v[7] ->> '$' AS DOUBLE) AS kcal_num,
        json_type(v[8]) AS distance_type,
        TRY_CAST(v[8] ->> '$' AS DOUBLE) AS distance_num,
        json_type(v[9]) AS hr_object_type,
        json_type(v[9] -> 'average') AS hr_avg_type,
        TRY_CAST(v[9] ->> 'average' AS DOUBLE) AS hr_avg_num,
        json_type(v[9] -> 'maximum') AS hr_max_type,
        TRY_CAST(v[9] ->> 'maximum' AS DOUBLE) AS hr_max_num,
        json_type(v[10]) AS legacy_type,
        TRY_CAST(v[10] ->> '$' AS DOUBLE) AS legacy_num,
        json_type(v[11]) AS pro_type,
        json_type(coalesce(v[11] -> 'cardio-load', v[11] -> 'cardio_load'))
            AS cardio_type,
        TRY_CAST(
            coalesce(v[11] ->> 'cardio-load', v[11] ->> 'cardio_load') AS DOUBLE
        ) AS cardio_num,
        json_type(coalesce(v[11] -> 'muscle-load', v[11] -> 'muscle_load'))
            AS muscle_type,
        TRY_CAST(
            coalesce(v[11] ->> 'muscle-load', v[11] ->> 'muscle_load') AS DOUBLE
        ) AS muscle_num,
        json_type(
            coalesce(v[11] -> 'perceived-load', v[11] -> 'perceived_load')
        ) AS perceived_type,
        TRY_CAST(
            coalesce(v[11] ->> 'perceived-load', v[11] ->> 'perceived_load')
            AS DOUBLE
        ) AS perceived_num,
        json_type(coalesce(v[12], v[13])) AS running_index_type,
        TRY_CAST(coalesce(v[12], v[13]) ->> '$' AS DOUBLE) AS running_index_num,
        json_type(v[14]) AS zones_type,
        list_transform(
            CASE WHEN json_type(v[14]) = 'ARRAY' THEN json_extract(v[14], '$[*]') END,
            lambda zone: {
                'is_object': json_type(zone) = 'OBJECT',
                'index_type': json_type(zone -> 'index'),
                'index': TRY_CAST(zone ->> 'index' AS DOUBLE),
                'lower_type': json_type(coalesce(zone -> 'lower_limit', zone -> 'lower-limit')),
                'lower': TRY_CAST(coalesce(zone ->> 'lower_limit', zone ->> 'lower-limit') AS DOUBLE),
                'upper_type': json_type(coalesce(zone -> 'upper_limit', zone -> 'upper-limit')),
                'upper': TRY_CAST(coalesce(zone ->> 'upper_limit', zone ->> 'upper-limit') AS DOUBLE),
                'in_zone_type': json_type(coalesce(zone -> 'in_zone', zone -> 'in-zone')),
                'in_zone_seconds': staging.iso_duration_seconds(coalesce(zone ->> 'in_zone', zone ->> 'in-zone'))
            }
        ) AS zones,
        json_type(v[15]) AS has_route_type,
        v[15] ->> '$' AS has_route_text,
        -- The sample series are read apart from the one parse above: only has_samples and the altitude
        -- totals need them, and a model that selects neither skips this (a workout's series are ~100 kB).
        -- An imported session's series are in the sample store; its payload lists their types.
        coalesce(json_array_length(p, '$.samples') > 0, false)
            OR coalesce(json_array_length(p, '$.export_sample_types') > 0, false) AS has_samples,
        list_filter(
            list_transform(
                string_split(
                    list_filter(
                        json_extract(p, '$.samples[*]'), lambda series: coalesce(series ->> 'sample_type', series ->> 'sample-type') = '3'
                    )[1] ->> 'data',
                    ','
                ),
                lambda token: TRY_CAST(trim(token) AS DOUBLE)
            ),
            lambda altitude: isfinite(altitude)
        ) AS altitudes
    FROM (
        -- One parse of the payload (a workout with samples is ~100 kB) for every field read below.
        SELECT *, json_extract(p, [
            '$.start_time',  -- v[1]
            '$.start_time_utc_offset',  -- v[2]
            '$.duration',  -- v[3]
            '$.device_id',  -- v[4]
            '$.sport',  -- v[5]
            '$.detailed_sport_info',  -- v[6]
            '$.calories',  -- v[7]
            '$.distance',  -- v[8]
            '$.heart_rate',  -- v[9]
            '$.training_load',  -- v[10]
            '$.training_load_pro',  -- v[11]
            '$.running_index',  -- v[12]
            '$."running-index"',  -- v[13]
            '$.heart_rate_zones',  -- v[14]
            '$.has_route'  -- v[15]
        ]) AS v
        FROM staging.raw_records('{{ source("raw", "exercises") }}')
    )
),

parsed AS (
    SELECT
        *,
        staging.is_iso_datetime(start_text) AS start_shape_ok,
        staging.iso_wall_clock(start_text) AS written_clock,
        staging.iso_zone_minutes(start_text) AS written_offset,
        CASE
            WHEN staging.json_is_number(offset_type) AND offset_num = floor(offset_num)
                AND offset_num BETWEEN -720 AND 840
                THEN TRY_CAST(offset_num AS INTEGER)
        END AS payload_offset,
        staging.iso_duration_seconds(duration_text) AS duration_seconds,
        CASE
            WHEN len(altitudes) > 0
                THEN list_reduce(
                    list_transform(altitudes, lambda a: {'level': a, 'ascent': 0.0::DOUBLE, 'descent': 0.0::DOUBLE}),
                    lambda counted, reading: CASE
                        WHEN reading.level - counted.level >= 1
                            THEN {
                                'level': reading.level,
                                'ascent': counted.ascent + (reading.level - counted.level),
                                'descent': counted.descent
                            }
                        WHEN counted.level - reading.level >= 1
                            THEN {
                                'level': reading.level,
                                'ascent': counted.ascent,
                                'descent': counted.descent + (counted.level - reading.level)
                            }
                        ELSE counted
                    END
                )
        END AS altitude_totals
    FROM fields
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
    FROM parsed
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
            staging.invalid_reason(
                offset_type, payload_offset IS NOT NULL, 'start_time_utc_offset: expected whole minutes -720..840'
            ),
            staging.invalid_reason(
                duration_type, duration_seconds IS NOT NULL, 'duration: expected an ISO-8601 duration (PnDTnHnMnS)'
            ),
            staging.invalid_reason(device_type, device_type = 'VARCHAR', 'device_id: expected a string'),
            staging.invalid_reason(sport_type, sport_type = 'VARCHAR', 'sport: expected a string'),
            staging.invalid_reason(
                detailed_type, detailed_type = 'VARCHAR', 'detailed_sport_info: expected a string'
            ),
            staging.invalid_reason(
                kcal_type, staging.json_is_number(kcal_type) AND kcal_num = floor(kcal_num) AND kcal_num >= 0,
                'calories: expected an integer >= 0 kcal'
            ),
            staging.invalid_reason(
                distance_type, staging.json_is_number(distance_type) AND distance_num >= 0,
                'distance: expected a number >= 0 m'
            ),
            staging.invalid_reason(hr_object_type, hr_object_type = 'OBJECT', 'heart_rate: expected an object'),
            staging.invalid_reason(
                hr_avg_type,
                staging.json_is_number(hr_avg_type) AND hr_avg_num = floor(hr_avg_num)
                AND (hr_avg_num = 0 OR hr_avg_num BETWEEN 20 AND 250),
                'heart_rate.average: expected an integer 20..250 bpm (0 = no signal)'
            ),
            staging.invalid_reason(
                hr_max_type,
                staging.json_is_number(hr_max_type) AND hr_max_num = floor(hr_max_num)
                AND (hr_max_num = 0 OR hr_max_num BETWEEN 20 AND 250),
                'heart_rate.maximum: expected an integer 20..250 bpm (0 = no signal)'
            ),
            staging.invalid_reason(
                legacy_type, staging.json_is_number(legacy_type) AND legacy_num >= 0,
                'training_load: expected a number >= 0'
            ),
            staging.invalid_reason(pro_type, pro_type = 'OBJECT', 'training_load_pro: expected an object'),
            staging.invalid_reason(
                cardio_type, staging.json_is_number(cardio_type) AND (cardio_num = -1 OR cardio_num >= 0),
                'training_load_pro.cardio-load: expected a number >= 0 (-1 = n/a)'
            ),
            staging.invalid_reason(
                muscle_type, staging.json_is_number(muscle_type) AND (muscle_num = -1 OR muscle_num >= 0),
                'training_load_pro.muscle-load: expected a number >= 0 (-1 = n/a)'
            ),
            staging.invalid_reason(
                perceived_type, staging.json_is_number(perceived_type) AND perceived_num >= 0,
                'training_load_pro.perceived-load: expected a number >= 0'
            ),
            staging.invalid_reason(
                running_index_type,
                staging.json_is_number(running_index_type) AND running_index_num = floor(running_index_num)
                AND running_index_num BETWEEN 0 AND 100,
                'running_index: expected an integer 0..100'
            ),
            staging.invalid_reason(zones_type, zones_type = 'ARRAY', 'heart_rate_zones: expected a JSON array'),
            CASE
                WHEN NOT list_bool_and(list_transform(
                    zones,
                    lambda z: z.is_object
                        AND staging.json_is_number(z.index_type) AND z.index = floor(z.index) AND z.index >= 0
                        AND staging.json_is_number(z.lower_type) AND z.lower = floor(z.lower)
                        AND staging.json_is_number(z.upper_type) AND z.upper = floor(z.upper)
                        AND 0 <= z.lower AND z.lower <= z.upper AND z.upper <= 250
                        AND (coalesce(z.in_zone_type, 'NULL') = 'NULL' OR z.in_zone_seconds IS NOT NULL)
                ))
                    THEN 'heart_rate_zones: each zone needs an integer index >= 0, integer limits 0..250 '
                        || '(lower <= upper) and an ISO-8601 in_zone'
            END,
            staging.invalid_reason(has_route_type, has_route_type = 'BOOLEAN', 'has_route: expected true or false')
        ), '') AS reject_reason
    FROM localized
),

typed AS (
    SELECT
        *,
        CASE WHEN staging.json_is_number(cardio_type) AND cardio_num >= 0 THEN cardio_num END AS cardio_load,
        CASE WHEN staging.json_is_number(legacy_type) AND legacy_num >= 0 THEN legacy_num END AS legacy_training_load
    FROM checked
)

SELECT
    user_id,
    coalesce(CAST(start_time_local AS DATE), raw_day) AS day,
    exercise_id AS record_key,
    raw_day,
    exercise_id,
    source,
    CASE WHEN device_type = 'VARCHAR' THEN device_text END AS device_id,
    CASE WHEN sport_type = 'VARCHAR' THEN sport_text END AS sport,
    CASE WHEN detailed_type = 'VARCHAR' THEN detailed_text END AS detailed_sport_info,
    start_time_local,
    start_time_utc,
    utc_offset_minutes,
    duration_seconds,
    TRY_CAST(staging.json_number(kcal_type, kcal_num) AS BIGINT) AS calories,
    staging.json_number(distance_type, distance_num) AS distance_m,
    CASE WHEN staging.json_is_number(hr_avg_type) AND hr_avg_num > 0 THEN hr_avg_num END AS hr_avg_bpm,
    CASE WHEN staging.json_is_number(hr_max_type) AND hr_max_num > 0 THEN hr_max_num END AS hr_max_bpm,
    cardio_load,
    CASE WHEN staging.json_is_number(muscle_type) AND muscle_num >= 0 THEN muscle_num END AS muscle_load,
    CASE WHEN staging.json_is_number(perceived_type) AND perceived_num > 0 THEN perceived_num END AS perceived_load,
    legacy_training_load,
    coalesce(cardio_load, legacy_training_load) AS training_load,
    altitude_totals.ascent AS ascent_m,
    altitude_totals.descent AS descent_m,
    TRY_CAST(staging.json_number(running_index_type, running_index_num) AS INTEGER) AS running_index,
    CASE
        WHEN zones_type = 'ARRAY'
            THEN to_json(list_sort(list_transform(
                zones,
                lambda z: {
                    'index': TRY_CAST(z.index AS INTEGER),
                    'lower_limit_bpm': TRY_CAST(z.lower AS INTEGER),
                    'upper_limit_bpm': TRY_CAST(z.upper AS INTEGER),
                    'in_zone_seconds': z.in_zone_seconds
                }
            )))::VARCHAR
    END AS heart_rate_zones,
    has_samples,
    CASE WHEN has_route_type = 'BOOLEAN' THEN has_route_text = 'true' END AS has_route,
    raw_payload,
    reject_reason
FROM typed
