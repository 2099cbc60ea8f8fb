-- One row per user and workout: every typed field of the session, dated by its local start date (the watch's
-- wall clock), so the API lists and shows workouts without parsing a payload. start_time_utc =
-- start_time_local - utc_offset_minutes (docs/accesslink.md §6.2); training_load is the Training Load Pro
-- cardio load, else the legacy training_load, as daily_metrics sums it; heart_rate_zones is JSON text
-- [{index, lower_limit_bpm, upper_limit_bpm, in_zone_seconds}] whichever key spelling Polar used; ascent_m and
-- descent_m come from the altitude series (staging.exercises). Sentinels are NULL as in staging.exercises.
-- A workout that arrived both from AccessLink and from a Polar account export is one row, the AccessLink one,
-- whose export_exercise_id names the export row it absorbed (the rule is in marts/counted_exercises.sql and
-- docs/polar-export.md). The model is named exercise_sessions because staging.exercises already holds that name; its table is
-- marts.exercises.
-- materialized: table
-- alias: exercises
-- window_days: 0
-- grain: user_id, day, exercise_id
SELECT
    user_id,
    day,
    exercise_id,
    start_time_local,
    start_time_utc,
    utc_offset_minutes,
    device_id,
    sport,
    detailed_sport_info,
    duration_seconds,
    distance_m,
    calories,
    hr_avg_bpm,
    hr_max_bpm,
    cardio_load,
    muscle_load,
    perceived_load,
    training_load,
    ascent_m,
    descent_m,
    running_index,
    heart_rate_zones,
    has_samples,
    has_route,
    export_exercise_id
FROM {{ ref('counted_exercises') }} AS counted
