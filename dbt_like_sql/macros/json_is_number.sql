-- Whether a json_type() is a JSON number (UBIGINT, BIGINT or DOUBLE; NULL for a missing key).
-- Every numeric AccessLink field is checked against this before its value is used, so a number sent as a
-- string ("80") or a boolean is rejected instead of cast (the sync client's checks, accesslink/models.py).
CREATE OR REPLACE MACRO json_is_number(value_type) AS value_type IN ('UBIGINT', 'BIGINT', 'DOUBLE')
