-- How every staging view opens: the rows of a raw table with its natural key, the raw table's day as raw_day
-- (exposed so a filter on it reaches the raw scan), the writer of the row (source: 'accesslink' or 'export'),
-- the payload as JSON (p) and as text (raw_payload).
-- Called with the table passed by name: FROM staging.raw_records('{{ source("raw", "sleep") }}').
CREATE OR REPLACE MACRO raw_records(raw_table) AS TABLE
SELECT
    * EXCLUDE (day, payload, fetched_at),
    day AS raw_day,
    payload AS p,
    payload::VARCHAR AS raw_payload
FROM query_table(raw_table)
