-- Nightly sleep from raw.sleep, typed: one row per user and night, dated by Polar's `date` (the wake-up date).
-- Stage, interruption and goal durations stay integer seconds as AccessLink sends them; sleep_seconds is the
-- actual sleep light + deep + REM + unrecognized (= sleep span minus interruptions on real data); Polar splits the
-- interruptions into short (< 90 s) and long (>= 90 s) ones. sleep_cycles and the three group scores (sleep
-- time; solidity = long interruptions, continuity, actual sleep; regeneration = REM and deep) are Polar's own.
-- interruptions counts the wake (stage 0) runs of the hypnogram between the first and the last sleep stage,
-- read in JSON order (the HH:MM keys wrap past midnight, so they are never sorted). heart_rate_avg_bpm,
-- _min_bpm and _max_bpm summarise the night's heart_rate_samples, 0 (no reading) excluded.
-- Sentinels become NULL: continuity 0, continuity_class 0, sleep_charge -1, sleep_rating 0 (docs/accesslink.md
-- §7; docs/methods.md §1.3). A row that cannot be typed keeps its key and gets reject_reason (NULL
-- when it typed fine); marts read only reject_reason IS NULL and daily_metrics copies the rest to quarantine.
-- Rows come from staging.raw_records (raw_day is the raw table's day, so a filter on it reaches the raw scan).
-- materialized: view
-- grain: user_id, day
WITH fields AS (
    SELECT
        user_id,
        raw_day,
        raw_payload,
        json_type(p) AS payload_type,
        v[1] ->> '$' AS date_text,
        v[2] ->> '$' AS start_text,
        v[3] ->> '$' AS end_text,
        json_type(v[4]) AS device_type,
        v[4] ->> '$' AS device_text,
        json_type(v[5]) AS light_type,
        TRY_CAST(v[5] ->> '$' AS DOUBLE) AS light_num,
        json_type(v[6]) AS deep_type,
        TRY_CAST(v[6] ->> '$' AS DOUBLE) AS deep_num,
        json_type(v[7]) AS rem_type,
        TRY_CAST(v[7] ->> '$' AS DOUBLE) AS rem_num,
        json_type(v[8]) AS unrecognized_type,
        TRY_CAST(v[8] ->> '$' AS DOUBLE) AS unrecognized_num,
        json_type(v[9]) AS interruption_type,
        TRY_CAST(v[9] ->> '$' AS DOUBLE) AS interruption_num,
        json_type(v[10]) AS score_type,
        TRY_CAST(v[10] ->> '$' AS DOUBLE) AS score_num,
        json_type(v[11]) AS continuity_type,
        TRY_CAST(v[11] ->> '$' AS DOUBLE) AS continuity_num,
        json_type(v[12]) AS continuity_class_type,
        TRY_CAST(v[12] ->> '$' AS DOUBLE) AS continuity_class_num,
        json_type(v[13]) AS charge_type,
        TRY_CAST(v[13] ->> '$' AS DOUBLE) AS charge_num,
        json_type(v[14]) AS goal_type,
        TRY_CAST(v[14] ->> '$' AS DOUBLE) AS goal_num,
        json_type(v[15]) AS rating_type,
        TRY_CAST(v[15] ->> '$' AS DOUBLE) AS rating_num,
        json_type(v[18]) AS short_type,
        TRY_CAST(v[18] ->> '$' AS DOUBLE) AS short_num,
        json_type(v[19]) AS long_type,
        TRY_CAST(v[19] ->> '$' AS DOUBLE) AS long_num,
        json_type(v[20]) AS cycles_type,
        TRY_CAST(v[20] ->> '$' AS DOUBLE) AS cycles_num,
        json_type(v[21]) AS duration_score_type,
        TRY_CAST(v[21] ->> '$' AS DOUBLE) AS duration_score_num,
        json_type(v[22]) AS solidity_score_type,
        TRY_CAST(v[22] ->> '$' AS DOUBLE) AS solidity_score_num,
        json_type(v[23]) AS regeneration_score_type,
        TRY_CAST(v[23] ->> '$' AS DOUBLE) AS regeneration_score_num,
        list_filter(
            map_values(TRY_CAST(v[16] AS MAP(VARCHAR, DOUBLE))), lambda bpm: bpm > 0
        ) AS heart_rates,
        json_type(v[17]) AS hypnogram_type,
        CASE
            WHEN json_type(v[17]) = 'OBJECT'
                THEN list_transform(
                    json_keys(v[17]),
                    lambda k: json_extract(v[17], '$."' || k || '"')
                )
        END AS stage_values
    FROM (
        -- One parse of the payload (hypnogram and heart-rate series included) for every field read below.
        SELECT *, json_extract(p, [
            '$.date',  -- v[1]
            '$.sleep_start_time',  -- v[2]
            '$.sleep_end_time',  -- v[3]
            '$.device_id',  -- v[4]
            '$.light_sleep',  -- v[5]
            '$.deep_sleep',  -- v[6]
            '$.rem_sleep',  -- v[7]
            '$.unrecognized_sleep_stage',  -- v[8]
            '$.total_interruption_duration',  -- v[9]
            '$.sleep_score',  -- v[10]
            '$.continuity',  -- v[11]
            '$.continuity_class',  -- v[12]
            '$.sleep_charge',  -- v[13]
            '$.sleep_goal',  -- v[14]
            '$.sleep_rating',  -- v[15]
            '$.heart_rate_samples',  -- v[16]
            '$.hypnogram',  -- v[17]
            '$.short_interruption_duration',  -- v[18]
            '$.long_interruption_duration',  -- v[19]
            '$.sleep_cycles',  -- v[20]
            '$.group_duration_score',  -- v[21]
            '$.group_solidity_score',  -- v[22]
            '$.group_regeneration_score'  -- v[23]
        ]) AS v
        FROM staging.raw_records('{{ source("raw", "sleep") }}')
    )
),

typed AS (
    SELECT
        *,
        staging.is_iso_date(date_text) AS date_ok,
        TRY_CAST(date_text AS DATE) AS wake_day,
        staging.iso_timestamptz(start_text) AS sleep_start,
        staging.iso_timestamptz(end_text) AS sleep_end,
        list_transform(stage_values, lambda v: staging.json_is_number(json_type(v))) AS stage_is_number,
        list_transform(stage_values, lambda v: TRY_CAST(v AS DOUBLE)) AS stage_numbers
    FROM fields
),

checked AS (
    SELECT
        *,
        NULLIF(concat_ws('; ',
            CASE WHEN payload_type IS DISTINCT FROM 'OBJECT' THEN 'payload: expected a JSON object' END,
            CASE WHEN NOT date_ok THEN 'date: expected YYYY-MM-DD' END,
            CASE WHEN sleep_start IS NULL THEN 'sleep_start_time: expected an ISO date-time with offset' END,
            CASE WHEN sleep_end IS NULL THEN 'sleep_end_time: expected an ISO date-time with offset' END,
            CASE WHEN sleep_end <= sleep_start THEN 'sleep_end_time: not after sleep_start_time' END,
            CASE WHEN epoch(sleep_end) - epoch(sleep_start) > 16 * 3600
                THEN 'sleep: more than 16 h from sleep_start_time to sleep_end_time' END,
            CASE WHEN NOT list_avg(heart_rates) BETWEEN 25 AND 120
                THEN 'heart_rate_samples: expected an average of 25..120 bpm over the night' END,
            staging.invalid_reason(device_type, device_type = 'VARCHAR', 'device_id: expected a string'),
            staging.invalid_reason(
                light_type, staging.json_is_number(light_type) AND light_num = floor(light_num) AND light_num >= 0,
                'light_sleep: expected whole seconds >= 0'
            ),
            staging.invalid_reason(
                deep_type, staging.json_is_number(deep_type) AND deep_num = floor(deep_num) AND deep_num >= 0,
                'deep_sleep: expected whole seconds >= 0'
            ),
            staging.invalid_reason(
                rem_type, staging.json_is_number(rem_type) AND rem_num = floor(rem_num) AND rem_num >= 0,
                'rem_sleep: expected whole seconds >= 0'
            ),
            staging.invalid_reason(
                unrecognized_type,
                staging.json_is_number(unrecognized_type)
                AND unrecognized_num = floor(unrecognized_num) AND unrecognized_num >= 0,
                'unrecognized_sleep_stage: expected whole seconds >= 0'
            ),
            staging.invalid_reason(
                interruption_type,
                staging.json_is_number(interruption_type)
                AND interruption_num = floor(interruption_num) AND interruption_num >= 0,
                'total_interruption_duration: expected whole seconds >= 0'
            ),
            staging.invalid_reason(
                short_type,
                staging.json_is_number(short_type) AND short_num = floor(short_num) AND short_num >= 0,
                'short_interruption_duration: expected whole seconds >= 0'
            ),
            staging.invalid_reason(
                long_type,
                staging.json_is_number(long_type) AND long_num = floor(long_num) AND long_num >= 0,
                'long_interruption_duration: expected whole seconds >= 0'
            ),
            staging.invalid_reason(
                cycles_type,
                staging.json_is_number(cycles_type) AND cycles_num = floor(cycles_num) AND cycles_num >= 0,
                'sleep_cycles: expected an integer >= 0'
            ),
            staging.invalid_reason(
                duration_score_type,
                staging.json_is_number(duration_score_type) AND duration_score_num BETWEEN 0 AND 100,
                'group_duration_score: expected 0..100'
            ),
            staging.invalid_reason(
                solidity_score_type,
                staging.json_is_number(solidity_score_type) AND solidity_score_num BETWEEN 0 AND 100,
                'group_solidity_score: expected 0..100'
            ),
            staging.invalid_reason(
                regeneration_score_type,
                staging.json_is_number(regeneration_score_type) AND regeneration_score_num BETWEEN 0 AND 100,
                'group_regeneration_score: expected 0..100'
            ),
            staging.invalid_reason(
                score_type,
                staging.json_is_number(score_type) AND score_num = floor(score_num) AND score_num BETWEEN 0 AND 100,
                'sleep_score: expected an integer 0..100'
            ),
            staging.invalid_reason(
                continuity_type,
                staging.json_is_number(continuity_type) AND (continuity_num = 0 OR continuity_num BETWEEN 1 AND 5),
                'continuity: expected 1.0..5.0 (0 = not measured)'
            ),
            staging.invalid_reason(
                continuity_class_type,
                staging.json_is_number(continuity_class_type)
                AND continuity_class_num = floor(continuity_class_num) AND continuity_class_num BETWEEN 0 AND 5,
                'continuity_class: expected an integer 1..5 (0 = n/a)'
            ),
            staging.invalid_reason(
                charge_type,
                staging.json_is_number(charge_type) AND charge_num = floor(charge_num)
                AND (charge_num = -1 OR charge_num BETWEEN 1 AND 5),
                'sleep_charge: expected an integer 1..5 (-1 = unavailable)'
            ),
            staging.invalid_reason(
                goal_type, staging.json_is_number(goal_type) AND goal_num = floor(goal_num) AND goal_num >= 0,
                'sleep_goal: expected whole seconds >= 0'
            ),
            staging.invalid_reason(
                rating_type,
                staging.json_is_number(rating_type) AND rating_num = floor(rating_num) AND rating_num BETWEEN 0 AND 5,
                'sleep_rating: expected an integer 0..5 (0 = not given)'
            ),
            staging.invalid_reason(hypnogram_type, hypnogram_type = 'OBJECT', 'hypnogram: expected an object'),
            CASE
                WHEN NOT list_bool_and(list_transform(
                    list_zip(stage_is_number, stage_numbers),
                    lambda z: z[1] AND z[2] = floor(z[2]) AND z[2] BETWEEN 0 AND 6
                ))
                    THEN 'hypnogram: stages must be integers 0..6'
            END
        ), '') AS reject_reason
    FROM typed
),

final AS (
    SELECT
        *,
        CASE WHEN reject_reason IS NULL THEN list_transform(stage_numbers, lambda s: s <> 0) END AS asleep
    FROM checked
)

SELECT
    user_id,
    coalesce(CASE WHEN date_ok THEN wake_day END, raw_day) AS day,
    coalesce(CASE WHEN date_ok THEN date_text END, strftime(raw_day, '%Y-%m-%d')) AS record_key,
    raw_day,
    CASE WHEN device_type = 'VARCHAR' THEN device_text END AS device_id,
    sleep_start,
    sleep_end,
    TRY_CAST(staging.json_number(light_type, light_num) AS BIGINT) AS light_sleep_seconds,
    TRY_CAST(staging.json_number(deep_type, deep_num) AS BIGINT) AS deep_sleep_seconds,
    TRY_CAST(staging.json_number(rem_type, rem_num) AS BIGINT) AS rem_sleep_seconds,
    TRY_CAST(staging.json_number(unrecognized_type, unrecognized_num) AS BIGINT) AS unrecognized_sleep_seconds,
    CASE
        WHEN staging.json_is_number(light_type)
            AND staging.json_is_number(deep_type)
            AND staging.json_is_number(rem_type)
            THEN TRY_CAST(
                light_num + deep_num + rem_num + coalesce(staging.json_number(unrecognized_type, unrecognized_num), 0)
                AS BIGINT
            )
    END AS sleep_seconds,
    TRY_CAST(staging.json_number(interruption_type, interruption_num) AS BIGINT) AS interruption_seconds,
    TRY_CAST(staging.json_number(short_type, short_num) AS BIGINT) AS short_interruption_seconds,
    TRY_CAST(staging.json_number(long_type, long_num) AS BIGINT) AS long_interruption_seconds,
    CASE
        WHEN asleep IS NOT NULL AND list_bool_or(asleep)
            THEN len(list_filter(
                generate_series(2, len(asleep)),
                lambda i: NOT asleep[i] AND asleep[i - 1]
                    AND i < len(asleep) + 1 - list_position(list_reverse(asleep), true)
            ))
        WHEN asleep IS NOT NULL THEN 0
    END AS interruptions,
    TRY_CAST(staging.json_number(cycles_type, cycles_num) AS INTEGER) AS sleep_cycles,
    TRY_CAST(staging.json_number(score_type, score_num) AS INTEGER) AS sleep_score,
    NULLIF(staging.json_number(continuity_type, continuity_num), 0) AS continuity,
    TRY_CAST(
        NULLIF(staging.json_number(continuity_class_type, continuity_class_num), 0) AS INTEGER
    ) AS continuity_class,
    TRY_CAST(NULLIF(staging.json_number(charge_type, charge_num), -1) AS INTEGER) AS sleep_charge,
    TRY_CAST(staging.json_number(goal_type, goal_num) AS BIGINT) AS sleep_goal_seconds,
    TRY_CAST(NULLIF(staging.json_number(rating_type, rating_num), 0) AS INTEGER) AS sleep_rating,
    staging.json_number(duration_score_type, duration_score_num) AS group_duration_score,
    staging.json_number(solidity_score_type, solidity_score_num) AS group_solidity_score,
    staging.json_number(regeneration_score_type, regeneration_score_num) AS group_regeneration_score,
    list_avg(heart_rates) AS heart_rate_avg_bpm,
    list_min(heart_rates) AS heart_rate_min_bpm,
    list_max(heart_rates) AS heart_rate_max_bpm,
    raw_payload,
    reject_reason
FROM final
