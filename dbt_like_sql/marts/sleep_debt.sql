-- Sleep debt over the last 14 nights: one row per user and day (the wake-up day). sleep_need_seconds is the
-- night's personal need: Polar's sleep_goal (the user-set goal) when the night carries it, else 8 h (28800 s;
-- Watson 2015 / Hirshkowitz 2015 put adult need at >= 7 h). deficit_seconds = max(0, need - sleep_seconds)
-- for a night with sleep data; need and deficit are NULL on a night without data.
-- debt_seconds = sum of deficit_seconds over the 14 calendar nights [day - 13, day]: nights without data are
-- skipped, never zero-filled, and surplus sleep does not bank credit (docs/methods.md §8: Oura's two-week
-- balance, NOOP #242). The window bounds the debt by 14 x need, unlike an open-ended ledger that grows
-- without limit. nights = nights with data in the window; debt_seconds is NULL when nights = 0.
-- materialized: table
-- window_days: 13
-- grain: user_id, day
WITH daily AS (
    SELECT
        user_id,
        day,
        CASE WHEN sleep_seconds IS NOT NULL THEN coalesce(sleep_goal_seconds, 28800) END AS sleep_need_seconds,
        sleep_seconds
    FROM {{ ref('daily_metrics') }}
    WHERE list_contains($users, user_id) AND day BETWEEN $read_from AND $last_day
),

nightly AS (
    SELECT
        user_id,
        day,
        sleep_need_seconds,
        CASE WHEN sleep_seconds IS NOT NULL THEN greatest(sleep_need_seconds - sleep_seconds, 0) END AS deficit_seconds
    FROM daily
),

windowed AS (
    SELECT
        user_id,
        day,
        sleep_need_seconds,
        deficit_seconds,
        CAST(sum(deficit_seconds) OVER last_14 AS BIGINT) AS debt_seconds,
        count(deficit_seconds) OVER last_14 AS nights
    FROM nightly
    WINDOW last_14 AS (PARTITION BY user_id ORDER BY day RANGE BETWEEN INTERVAL 13 DAYS PRECEDING AND CURRENT ROW)
)

SELECT user_id, day, sleep_need_seconds, deficit_seconds, debt_seconds, nights
FROM windowed
WHERE day BETWEEN $first_day AND $last_day
