-- The workouts of the run's slice as every consumer counts them: each workout once, even when it arrived both
-- from the AccessLink sync and from a Polar account export (docs/polar-export.md, "Workouts from both sources").
-- The rule: an export row duplicates an AccessLink row of the same user when their local starts
-- (start_time_local) are at most 60 s apart and their durations differ by at most 1 % of the AccessLink
-- duration; if several AccessLink rows qualify, the nearest start wins (then the smaller exercise id).
-- duplicate_of is that AccessLink row's exercise_id (NULL for every other row); rows with a duplicate_of are
-- left out, the AccessLink row is kept and names the export row it absorbed in export_exercise_id (the
-- nearest, should two exports match it). Two AccessLink rows, or two export rows, are never merged.
-- The match reads only the run's users and the slice's days ±1 (a start 60 s before or after midnight lands
-- on the neighbouring day; a workout's day is its local start date on both sides), through
-- staging.typed_slice, so a run never types a user's whole history. Written once and inlined (ephemeral) into
-- daily_metrics and exercise_sessions (marts.exercises).
-- materialized: ephemeral
-- grain: user_id, day, exercise_id
WITH near AS (
    SELECT *
    FROM staging.typed_slice(
        '{{ ref("exercises") }}', $users, CAST($first_day AS DATE) - 1, CAST($last_day AS DATE) + 1
    )
),

matches AS (
    SELECT
        exported.user_id,
        exported.exercise_id AS export_exercise_id,
        synced.exercise_id AS accesslink_exercise_id,
        abs(epoch(exported.start_time_local) - epoch(synced.start_time_local)) AS start_gap_seconds
    FROM near AS exported
    INNER JOIN near AS synced
        ON exported.user_id = synced.user_id
        AND synced.day BETWEEN exported.day - 1 AND exported.day + 1
    WHERE
        exported.source = 'export'
        AND synced.source = 'accesslink'
        AND abs(epoch(exported.start_time_local) - epoch(synced.start_time_local)) <= 60
        AND abs(exported.duration_seconds - synced.duration_seconds) <= 0.01 * synced.duration_seconds
),

duplicates AS (
    SELECT
        user_id,
        export_exercise_id,
        arg_min(accesslink_exercise_id, (start_gap_seconds, accesslink_exercise_id)) AS duplicate_of
    FROM matches
    GROUP BY user_id, export_exercise_id
),

absorbed AS (
    SELECT
        user_id,
        duplicate_of AS accesslink_exercise_id,
        arg_min(export_exercise_id, (start_gap_seconds, export_exercise_id)) AS export_exercise_id
    FROM duplicates
    INNER JOIN matches USING (user_id, export_exercise_id)
    WHERE matches.accesslink_exercise_id = duplicates.duplicate_of
    GROUP BY user_id, duplicate_of
)

SELECT
    near.*,
    absorbed.export_exercise_id
FROM near
LEFT JOIN duplicates
    ON near.user_id = duplicates.user_id AND near.exercise_id = duplicates.export_exercise_id
LEFT JOIN absorbed
    ON near.user_id = absorbed.user_id AND near.exercise_id = absorbed.accesslink_exercise_id
WHERE duplicates.duplicate_of IS NULL AND near.day BETWEEN $first_day AND $last_day
