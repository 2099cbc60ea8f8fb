-- The number read from a JSON field when the field holds a JSON number, else NULL: `value_type` is its
-- json_type(), `num` its value as DOUBLE (TRY_CAST(p ->> 'field' AS DOUBLE)). Sentinels are removed by the
-- caller, e.g. NULLIF(json_number(...), 0) for "0 = not measured" (docs/accesslink.md §7).
CREATE OR REPLACE MACRO json_number(value_type, num) AS CASE
    WHEN value_type IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN num
END
