-- Whether a text is a calendar date written YYYY-MM-DD that exists (BOOLEAN, false for NULL): Polar's `date`
-- of sleep and Nightly Recharge (docs/accesslink.md §6.3), the wake-up day a night belongs to.
CREATE OR REPLACE MACRO is_iso_date(date_text) AS
    regexp_full_match(coalesce(date_text, ''), '\d{4}-\d{2}-\d{2}') AND TRY_CAST(date_text AS DATE) IS NOT NULL
