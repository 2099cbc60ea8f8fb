-- The clock written on an ISO-8601 date-time, without its zone, as a naive TIMESTAMP:
-- '2025-05-01T22:30:00Z' and '2025-05-01T22:30:00+02:00' -> 2025-05-01 22:30:00; NULL when it does not cast.
-- Pair it with iso_zone_minutes to place the clock in UTC (docs/accesslink.md §6.2: UTC = local - offset).
CREATE OR REPLACE MACRO iso_wall_clock(timestamp_text) AS
    TRY_CAST(regexp_replace(coalesce(timestamp_text, ''), '(Z|[+-]\d{2}:?\d{2})$', '') AS TIMESTAMP)
