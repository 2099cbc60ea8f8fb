"""The read layer: typed answers from the serving snapshot, one module per resource.

Each module holds a resource's pydantic response model(s) and the query function(s) that fill them from a
DuckDB cursor on the serving snapshot. The HTTP routers, and later an MCP server and a dashboard, call these
functions instead of writing SQL, so every surface gives the same answer to the same question.

The queries read mart tables (``marts.*``), plus the users' time zones (``control.user_time_zones``, the
warehouse's copy of the control store's, so "today" can be each user's own date). Typing, sentinels,
de-duplication and payload parsing happen once, when the marts are built (``dbt_like_sql/``); a reader never
touches ``staging.*`` views or ``raw.*`` payloads, so a request costs a lookup on a typed table rather than a
JSON parse per row.

Nothing here imports FastAPI: the layer must work without a web app. Callers own the cursor (and so the
snapshot generation): a function reads with the cursor it is given and never opens or closes connections.
"""
