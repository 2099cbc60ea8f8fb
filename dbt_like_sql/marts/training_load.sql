-- Training load and acute:chronic workload ratios: one row per user and day. daily_load is daily_metrics'
-- training_load (0 on days without a workout: a rest day is zero load, not missing data).
-- Rolling (calendar days): acute_7d = mean over [day - 6, day] (NULL until 7 days of history), chronic_28d =
-- mean over [day - 27, day] (NULL until 28 days); acwr_coupled = acute_7d / chronic_28d; acwr_uncoupled =
-- acute_7d / mean over [day - 27, day - 7] (Lolli et al. 2019: coupling builds in a spurious correlation).
-- EWMA (Williams et al. 2017): ewma_t = lambda * load_t + (1 - lambda) * ewma_(t-1), lambda = 2 / (N + 1),
-- N = 7 (acute, lambda = 0.25) and N = 28 (chronic, lambda = 2/29), seeded with 0 before the user's first day,
-- evaluated as the equivalent weighted sum over the trailing 365 days (weights lambda * (1 - lambda)^k; what
-- older days would add is below (27/29)^365 < 6e-12 of the chronic level). acwr_ewma = ewma_acute /
-- ewma_chronic. polar_ratio is Polar's Training Load Pro "strain / tolerance" (7-day over 28-day mean) of the
-- Training Load Pro cardio-load alone, recomputed from the sessions (raw.* holds no /cardio-load stream).
-- Every ratio is NULL until 28 days of history exist and when its denominator is 0 (docs/methods.md §7.5:
-- ratios hidden for the first 28 d; the 0.8-1.3 "sweet spot" is a heuristic, Impellizzeri 2020).
-- materialized: table
-- window_days: 364
-- grain: user_id, day
WITH daily AS (
    SELECT user_id, day, CAST(training_load AS DOUBLE) AS load, CAST(cardio_load AS DOUBLE) AS cardio
    FROM {{ ref('daily_metrics') }}
    WHERE list_contains($users, user_id) AND day BETWEEN $read_from AND $last_day
),

targets AS (
    SELECT *
    FROM daily
    WHERE day BETWEEN $first_day AND $last_day
),

-- One self-join over the trailing 365 days feeds every statistic through ordered aggregates, so a day's
-- numbers do not depend on where the run's read range starts (window frames sum in an order that does).
trailing_year AS (
    SELECT
        targets.user_id,
        targets.day,
        count(*) FILTER (WHERE past.day > targets.day - 7) AS days_7,
        count(*) FILTER (WHERE past.day > targets.day - 28) AS days_28,
        avg(past.load ORDER BY past.day) FILTER (WHERE past.day > targets.day - 7) AS acute,
        avg(past.load ORDER BY past.day) FILTER (WHERE past.day > targets.day - 28) AS chronic,
        avg(past.load ORDER BY past.day) FILTER (
            WHERE past.day BETWEEN targets.day - 27 AND targets.day - 7
        ) AS chronic_uncoupled,
        avg(past.cardio ORDER BY past.day) FILTER (WHERE past.day > targets.day - 7) AS cardio_acute,
        avg(past.cardio ORDER BY past.day) FILTER (WHERE past.day > targets.day - 28) AS cardio_chronic,
        sum(0.25 * pow(0.75, targets.day - past.day) * past.load ORDER BY past.day) AS ewma_acute,
        sum((2.0 / 29.0) * pow(27.0 / 29.0, targets.day - past.day) * past.load ORDER BY past.day) AS ewma_chronic
    FROM targets
    INNER JOIN daily AS past
        ON past.user_id = targets.user_id AND past.day BETWEEN targets.day - 364 AND targets.day
    GROUP BY targets.user_id, targets.day
)

SELECT
    targets.user_id,
    targets.day,
    targets.load AS daily_load,
    CASE WHEN t.days_7 = 7 THEN t.acute END AS acute_7d,
    CASE WHEN t.days_28 = 28 THEN t.chronic END AS chronic_28d,
    CASE WHEN t.days_28 = 28 AND t.chronic > 0 THEN t.acute / t.chronic END AS acwr_coupled,
    CASE WHEN t.days_28 = 28 AND t.chronic_uncoupled > 0 THEN t.acute / t.chronic_uncoupled END AS acwr_uncoupled,
    t.ewma_acute,
    t.ewma_chronic,
    CASE WHEN t.days_28 = 28 AND t.ewma_chronic > 0 THEN t.ewma_acute / t.ewma_chronic END AS acwr_ewma,
    CASE WHEN t.days_28 = 28 AND t.cardio_chronic > 0 THEN t.cardio_acute / t.cardio_chronic END AS polar_ratio
FROM targets
INNER JOIN trailing_year AS t ON t.user_id = targets.user_id AND t.day = targets.day
