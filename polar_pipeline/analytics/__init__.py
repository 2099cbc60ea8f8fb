"""Pattern analytics as pure functions over polars frames of the marts: no Dagster, no DuckDB.

Every public ``compute_*`` function here follows one contract, so the Dagster assets in
``polar_pipeline/defs/analytics/`` can wire them all the same way:

* its inputs are marts rows (as read from the warehouse) for the run's users and the days
  ``[first_day - LOOKBACK_DAYS, last_day]``, where ``LOOKBACK_DAYS`` is a constant of its module;
* it returns one polars DataFrame whose first two columns are ``user_id`` (String) and ``day`` (Date), with
  rows only for the (user, day) rows of marts.daily_metrics with ``first_day <= day <= last_day`` (so a
  slice whose edge falls in a gap writes the same rows as any other run), in a deterministic order;
* it lays the rows out on the one dense user × calendar-day grid, ``_common.dense_calendar``;
* a day's row uses data up to and including that day only (never the future);
* it computes all users and days in one vectorised pass, not a loop over partitions.
"""
