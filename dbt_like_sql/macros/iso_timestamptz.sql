-- An ISO-8601 date-time that carries its zone, as TIMESTAMPTZ; NULL when the zone is missing, the shape is
-- wrong or the instant does not exist. Sleep start and end times are written with a numeric offset or Z
-- (docs/accesslink.md §6.2: "use as given"), so a naive clock there is refused rather than guessed.
CREATE OR REPLACE MACRO iso_timestamptz(timestamp_text) AS CASE
    WHEN regexp_full_match(
        coalesce(timestamp_text, ''), '\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})'
    ) THEN TRY_CAST(timestamp_text AS TIMESTAMPTZ)
END
