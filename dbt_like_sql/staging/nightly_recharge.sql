-- Nightly Recharge from raw.nightly_recharge, typed: one row per user and night, dated by Polar's `date` (the
-- wake-up date, the same day as that night's sleep). hrv_rmssd_ms is Polar's heart_rate_variability_avg (RMSSD
-- in ms over ~the first 4 h of sleep) and ln_rmssd = ln(hrv_rmssd_ms), the scale every HRV statistic uses
-- because RMSSD is right-skewed (Plews 2012/2013; Buchheit 2014; docs/methods.md §2).
-- Plausible ranges (a value outside quarantines the record): overnight HR 25..120 bpm, ln RMSSD 1.5..6.5,
-- ANS charge -10..+10. Sentinels become NULL: heart_rate_avg 0, beat_to_beat_avg 0, heart_rate_variability_avg 0 and
-- breathing_rate_avg 0 mean "no signal" (docs/accesslink.md §7). Ranges follow the sync client's checks;
-- a row that cannot be typed gets reject_reason (NULL when it typed fine) and is quarantined by daily_metrics.
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
        json_type(p -> 'heart_rate_avg') AS hr_type,
        TRY_CAST(p ->> 'heart_rate_avg' AS DOUBLE) AS hr_num,
        json_type(p -> 'beat_to_beat_avg') AS b2b_type,
        TRY_CAST(p ->> 'beat_to_beat_avg' AS DOUBLE) AS b2b_num,
        json_type(p -> 'heart_rate_variability_avg') AS hrv_type,
        TRY_CAST(p ->> 'heart_rate_variability_avg' AS DOUBLE) AS hrv_num,
        json_type(p -> 'breathing_rate_avg') AS breathing_type,
        TRY_CAST(p ->> 'breathing_rate_avg' AS DOUBLE) AS breathing_num,
        json_type(p -> 'nightly_recharge_status') AS status_type,
        TRY_CAST(p ->> 'nightly_recharge_status' AS DOUBLE) AS status_num,
        json_type(p -> 'ans_charge') AS ans_type,
        TRY_CAST(p ->> 'ans_charge' AS DOUBLE) AS ans_num,
        json_type(p -> 'ans_charge_status') AS ans_status_type,
        TRY_CAST(p ->> 'ans_charge_status' AS DOUBLE) AS ans_status_num
    FROM staging.raw_records('{{ source("raw", "nightly_recharge") }}')
),

checked AS (
    SELECT
        *,
        staging.is_iso_date(date_text) AS date_ok,
        NULLIF(concat_ws('; ',
            CASE WHEN payload_type IS DISTINCT FROM 'OBJECT' THEN 'payload: expected a JSON object' END,
            CASE WHEN NOT staging.is_iso_date(date_text) THEN 'date: expected YYYY-MM-DD' END,
            staging.invalid_reason(
                hr_type,
                staging.json_is_number(hr_type) AND hr_num = floor(hr_num)
                AND (hr_num = 0 OR hr_num BETWEEN 25 AND 120),
                'heart_rate_avg: expected an integer 25..120 bpm (0 = no signal)'
            ),
            staging.invalid_reason(
                b2b_type,
                staging.json_is_number(b2b_type) AND b2b_num = floor(b2b_num)
                AND (b2b_num = 0 OR b2b_num BETWEEN 200 AND 3000),
                'beat_to_beat_avg: expected an integer 200..3000 ms (0 = no signal)'
            ),
            staging.invalid_reason(
                hrv_type,
                staging.json_is_number(hrv_type) AND hrv_num = floor(hrv_num)
                AND (hrv_num = 0 OR ln(hrv_num) BETWEEN 1.5 AND 6.5),
                'heart_rate_variability_avg: expected an integer RMSSD with ln 1.5..6.5 (5..665 ms; 0 = no signal)'
            ),
            staging.invalid_reason(
                breathing_type,
                staging.json_is_number(breathing_type) AND (breathing_num = 0 OR breathing_num BETWEEN 1 AND 60),
                'breathing_rate_avg: expected 1..60 breaths/min (0 = no signal)'
            ),
            staging.invalid_reason(
                status_type,
                staging.json_is_number(status_type) AND status_num = floor(status_num) AND status_num BETWEEN 1 AND 6,
                'nightly_recharge_status: expected an integer 1..6'
            ),
            staging.invalid_reason(
                ans_type, staging.json_is_number(ans_type) AND ans_num BETWEEN -10 AND 10,
                'ans_charge: expected -10.0..+10.0'
            ),
            staging.invalid_reason(
                ans_status_type,
                staging.json_is_number(ans_status_type)
                AND ans_status_num = floor(ans_status_num) AND ans_status_num BETWEEN 1 AND 5,
                'ans_charge_status: expected an integer 1..5'
            )
        ), '') AS reject_reason
    FROM fields
)

SELECT
    user_id,
    coalesce(CASE WHEN date_ok THEN TRY_CAST(date_text AS DATE) END, raw_day) AS day,
    coalesce(CASE WHEN date_ok THEN date_text END, strftime(raw_day, '%Y-%m-%d')) AS record_key,
    raw_day,
    CASE WHEN staging.json_is_number(hr_type) AND hr_num > 0 THEN hr_num END AS overnight_hr_bpm,
    CASE WHEN staging.json_is_number(b2b_type) AND b2b_num > 0 THEN b2b_num END AS beat_to_beat_ms,
    CASE WHEN staging.json_is_number(hrv_type) AND hrv_num > 0 THEN hrv_num END AS hrv_rmssd_ms,
    CASE WHEN staging.json_is_number(hrv_type) AND hrv_num > 0 THEN ln(hrv_num) END AS ln_rmssd,
    CASE WHEN staging.json_is_number(breathing_type) AND breathing_num > 0 THEN breathing_num END AS breathing_rate,
    TRY_CAST(staging.json_number(status_type, status_num) AS INTEGER) AS nightly_recharge_status,
    staging.json_number(ans_type, ans_num) AS ans_charge,
    TRY_CAST(staging.json_number(ans_status_type, ans_status_num) AS INTEGER) AS ans_charge_status,
    raw_payload,
    reject_reason
FROM checked
