-- The UTC offset written at the end of an ISO-8601 date-time, in minutes east of UTC (INTEGER):
-- '...T22:30:00Z' -> 0, '...+02:00' -> 120, '...-0530' -> -330; NULL when the text carries no zone.
-- AccessLink mixes naive wall clocks, 'Z' and numeric offsets (docs/accesslink.md §6.2); a zoned exercise
-- start_time is moved to the watch's clock with this offset (UTC = local - offset).
CREATE OR REPLACE MACRO iso_zone_minutes(timestamp_text) AS list_transform(
    [regexp_extract(coalesce(timestamp_text, ''), '(Z|[+-]\d{2}:?\d{2})$', 1)],
    lambda zone_text: CASE
        WHEN zone_text = 'Z' THEN 0
        WHEN zone_text <> ''
            THEN (CASE WHEN zone_text[1] = '-' THEN -1 ELSE 1 END)
            * (TRY_CAST(substr(replace(zone_text, ':', ''), 2, 2) AS INTEGER) * 60
                + TRY_CAST(substr(replace(zone_text, ':', ''), 4, 2) AS INTEGER))
    END
)[1]
