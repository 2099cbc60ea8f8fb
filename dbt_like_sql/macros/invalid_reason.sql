-- One entry of a staging view's reject_reason: `reason` when a field is present (its json_type() is neither
-- SQL NULL, i.e. missing, nor 'NULL', i.e. JSON null) and `is_valid` does not hold; NULL otherwise.
-- Absent and null fields are allowed (docs/accesslink.md §7: optional fields are omitted); the checks mirror the
-- sync client's (accesslink/models.py). The view joins the entries with concat_ws('; ', ...).
CREATE OR REPLACE MACRO invalid_reason(value_type, is_valid, reason) AS CASE
    WHEN value_type <> 'NULL' AND NOT (is_valid) THEN reason
END
