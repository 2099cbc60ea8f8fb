-- An ISO-8601 duration as seconds (DOUBLE): PT7H22M -> 26520, P1DT2H -> 93600, PT8239.604S -> 8239.604.
-- AccessLink sends durations as ISO-8601 strings (docs/accesslink.md §6.1): activity uses hours and minutes,
-- real exercises seconds with milliseconds, so both forms are parsed. Weeks, days, hours, minutes and seconds
-- may carry decimals; years and months are refused (NULL) because their length is undefined, and so are an
-- empty duration (P, PT), a dangling T and anything that is not a string of that shape (NULL in, NULL out).
-- The text is split by one regexp_extract; list_transform over a one-element list binds the parts once, so
-- the regexp runs once per row instead of once per part (DuckDB expands a macro inline).
CREATE OR REPLACE MACRO iso_duration_seconds(duration_text) AS list_transform(
    [regexp_extract(
        coalesce(duration_text, ''),
        '^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$',
        ['w', 'd', 'h', 'm', 's']
    )],
    lambda duration_parts: CASE
        WHEN NOT ends_with(duration_text, 'T')
            AND concat(duration_parts.w, duration_parts.d, duration_parts.h, duration_parts.m, duration_parts.s) <> ''
            THEN coalesce(TRY_CAST(NULLIF(duration_parts.w, '') AS DOUBLE), 0) * 604800
            + coalesce(TRY_CAST(NULLIF(duration_parts.d, '') AS DOUBLE), 0) * 86400
            + coalesce(TRY_CAST(NULLIF(duration_parts.h, '') AS DOUBLE), 0) * 3600
            + coalesce(TRY_CAST(NULLIF(duration_parts.m, '') AS DOUBLE), 0) * 60
            + coalesce(TRY_CAST(NULLIF(duration_parts.s, '') AS DOUBLE), 0)
    END
)[1]
