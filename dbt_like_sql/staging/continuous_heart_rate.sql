-- Continuous heart rate from raw.continuous_heart_rate, typed and summarised: one row per user and day, dated
-- by Polar's `date`. A day holds device-local HH:MM:SS samples about every 5 minutes, with denser (down to
-- 1-second) stretches (docs/accesslink.md §5.4); a reading of 0 means no signal (off-wrist) and is left out
-- of hr_min_bpm, hr_avg_bpm, hr_max_bpm and hr_sample_count, which summarise the day's samples as sent (a
-- dense stretch weighs as many samples as it has). The checks mirror the sync client's: every sample has a
-- valid sample_time, a heart_rate is an integer 20..250 bpm or 0; a row that cannot be typed gets
-- reject_reason (NULL when it typed fine) and is quarantined by daily_metrics.
-- A day is ~1,000 samples, so the payload is parsed once into typed lists (json_transform) and checked with
-- list functions, not sample by sample. Rows come from staging.raw_records (raw_day is the raw table's day, so
-- a filter on it reaches the raw scan).
-- materialized: view
-- grain: user_id, day
WITH fields AS (
    SELECT
        user_id,
        raw_day,
        raw_payload,
        json_type(p) AS payload_type,
        parsed.date AS date_text,
        parsed.heart_rate_samples AS samples,
        -- json_transform reads a heart_rate_samples that is no array as NULL: look at what it is then only.
        CASE WHEN parsed.heart_rate_samples IS NULL THEN json_type(p, '$.heart_rate_samples') END AS samples_type,
        list_transform(parsed.heart_rate_samples, lambda s: s.heart_rate) AS bpm_json,
        list_transform(parsed.heart_rate_samples, lambda s: s.sample_time) AS clock_texts
    FROM (
        SELECT
            *,
            json_transform(
                p, '{"date": "VARCHAR", "heart_rate_samples": [{"heart_rate": "JSON", "sample_time": "VARCHAR"}]}'
            ) AS parsed
        FROM staging.raw_records('{{ source("raw", "continuous_heart_rate") }}')
    )
),

typed AS (
    SELECT
        *,
        TRY_CAST(bpm_json AS DOUBLE[]) AS bpm_values,
        list_filter(TRY_CAST(bpm_json AS DOUBLE[]), lambda bpm: bpm > 0) AS heart_rates
    FROM fields
),

checked AS (
    SELECT
        *,
        staging.is_iso_date(date_text) AS date_ok,
        NULLIF(concat_ws('; ',
            CASE WHEN payload_type IS DISTINCT FROM 'OBJECT' THEN 'payload: expected a JSON object' END,
            CASE WHEN NOT staging.is_iso_date(date_text) THEN 'date: expected YYYY-MM-DD' END,
            CASE
                WHEN samples_type IS NOT NULL AND samples_type <> 'NULL'
                    THEN 'heart_rate_samples: expected a JSON array'
            END,
            CASE
                WHEN list_count(clock_texts) < len(samples)
                    OR NOT regexp_full_match(
                        array_to_string(clock_texts, ','),
                        '(([01]\d|2[0-3]):[0-5]\d:[0-5]\d)?(,([01]\d|2[0-3]):[0-5]\d:[0-5]\d)*'
                    )
                    THEN 'heart_rate_samples: every sample needs a sample_time HH:MM:SS'
            END,
            CASE
                -- Every heart_rate present is a JSON number (the JSON text of a string has quotes) or null,
                -- and a whole 0 or 20..250.
                WHEN NOT regexp_full_match(
                    array_to_string(bpm_json::VARCHAR[], ','),
                    '((-?\d+(\.\d+)?([eE][+-]?\d+)?|null)(,(-?\d+(\.\d+)?([eE][+-]?\d+)?|null))*)?'
                )
                    OR list_min(list_filter(bpm_values, lambda bpm: bpm <> 0)) < 20
                    OR list_max(bpm_values) > 250
                    OR list_bool_or(list_transform(heart_rates, lambda bpm: bpm <> floor(bpm)))
                    THEN 'heart_rate_samples: heart_rate must be an integer 20..250 bpm (0 = no signal)'
            END
        ), '') AS reject_reason
    FROM typed
)

SELECT
    user_id,
    coalesce(CASE WHEN date_ok THEN TRY_CAST(date_text AS DATE) END, raw_day) AS day,
    coalesce(CASE WHEN date_ok THEN date_text END, strftime(raw_day, '%Y-%m-%d')) AS record_key,
    raw_day,
    CAST(len(coalesce(samples, [])) AS BIGINT) AS sample_count,
    CAST(len(coalesce(heart_rates, [])) AS BIGINT) AS hr_sample_count,
    list_min(heart_rates) AS hr_min_bpm,
    list_avg(heart_rates) AS hr_avg_bpm,
    list_max(heart_rates) AS hr_max_bpm,
    raw_payload,
    reject_reason
FROM checked
