-- The typed rows of a staging view that a mart reads for its slice, each natural key once: rows without a
-- reject_reason, of the slice's users and days. Rows are pre-filtered on raw_day within 2 days of the slice (a
-- workout's local date can differ from its raw day by at most that), so the filter reaches the raw scan and a
-- run types only the payloads near its slice, not the whole history. If a stream holds two typed rows for one
-- natural key (record_key; only possible when a payload's own date disagrees with its raw key), the one with
-- the smallest payload text is kept, so every run picks the same one. The payload text only breaks that tie:
-- it is left out of the rows, which keeps a slice of 100 kB workout payloads light.
-- Called with the view passed by name: FROM staging.typed_slice('{{ ref("sleep") }}', $users, $first_day, $last_day).
CREATE OR REPLACE MACRO typed_slice(staging_view, users, first_day, last_day) AS TABLE
SELECT * EXCLUDE (raw_payload)
FROM query_table(staging_view)
WHERE
    reject_reason IS NULL
    AND list_contains(users, user_id)
    AND raw_day BETWEEN CAST(first_day AS DATE) - 2 AND CAST(last_day AS DATE) + 2
    AND day BETWEEN first_day AND last_day
QUALIFY row_number() OVER (PARTITION BY user_id, record_key ORDER BY raw_payload) = 1
