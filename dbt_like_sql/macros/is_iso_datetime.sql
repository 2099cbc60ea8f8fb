-- Whether a text has the shape of an ISO-8601 date-time as AccessLink writes them (BOOLEAN, false for NULL):
-- YYYY-MM-DDTHH:MM, optional :SS and up to nine fraction digits, then an optional zone (Z, +HH:MM, +HHMM).
-- Naive local wall clocks are common and seconds are omitted when zero (docs/accesslink.md §6.2), so both pass.
-- A shape check only: whether the date exists is left to the cast that follows it.
CREATE OR REPLACE MACRO is_iso_datetime(timestamp_text) AS regexp_full_match(
    coalesce(timestamp_text, ''), '\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?'
)
