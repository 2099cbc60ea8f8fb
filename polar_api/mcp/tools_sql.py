"""query_sql: one read-only SELECT over the public tables, for what no other tool answers.

The engine is ``polar_api.read.sql_query.run_query``: it checks the statement with DuckDB's own parser, runs
it over views that hold only the caller's rows, without file or network access, stops it at its time limit and
cuts the rows at ``max_rows``. A refusal (a write, a second statement, a file function, a table that is
not public, the time limit) comes back as the tool's error, in the engine's words, so the model can rewrite
its SQL. The query reads the generation this call holds (its file stays readable while the call runs).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field, StringConstraints

from polar_api.mcp.access import rows_visible_to
from polar_api.mcp.answers import McpRuntime, reading_if_published
from polar_api.mcp.tools_data import READ_ONLY
from polar_api.read.sql_query import QueryRefused, run_query
from polar_pipeline.control_store import USER_ID_PATTERN
from polar_pipeline.warehouse.snapshot import SnapshotOpenFailed

QUERY_TIMEOUT_S = 5.0
MAX_ROWS = 500


SqlUserId = Annotated[
    Annotated[str, StringConstraints(pattern=USER_ID_PATTERN.pattern, max_length=100)] | None,
    Field(
        description=(
            "whose rows the query sees. Leave it out with a user's own key (that user's rows) or with an "
            "admin key (every user's rows); with an admin key, a user id limits the query to that user. "
            "Naming another user than a user key's own is refused."
        )
    ),
]


class QueryAnswer(BaseModel):
    """The rows of one SELECT, and which snapshot and whose rows they come from."""

    user_id: str | None = Field(description="whose rows the query could see; null: every user's (admin)")
    snapshot_generation: int = Field(description="the serving snapshot generation the query read")
    snapshot_age_seconds: float = Field(description="seconds since that snapshot was published")
    newest_synced_day: date | None = Field(
        description="the newest day with any synced record among the rows the query could see"
    )
    columns: list[str]
    column_types: list[str] = Field(description="DuckDB's type of each column")
    rows: list[list[Any]] = Field(
        description="one list per row, in column order: dates as YYYY-MM-DD, NaN and infinities as null"
    )
    row_count: int
    truncated: bool = Field(description="true: the query had more rows than max_rows; aggregate or filter")
    elapsed_ms: float
    note: str | None = Field(description="a plain sentence when rows were cut off, else null")


def register(server: MCPServer, runtime: McpRuntime) -> None:
    """Add query_sql to ``server``."""

    @server.tool(
        annotations=READ_ONLY,
        description=(
            "Run ONE read-only DuckDB SELECT over the public tables (marts.*, analytics.*, samples.*, "
            "control.user_time_zones, raw.quarantine; the resource polar://tables lists them and "
            "polar://tables/{schema.table} gives each one's columns and units). Name tables schema.table, "
            "e.g. SELECT day, sleep_score, hrv_rmssd_ms FROM marts.daily_metrics ORDER BY day DESC LIMIT "
            "14. With a user's key only that user's rows exist. Anything else (writes, several "
            "statements, file or settings functions, other catalogs) is refused with the reason; a query "
            f"is stopped after {QUERY_TIMEOUT_S:g} s. Use the other tools first: they already compute "
            "what the questions usually need."
        ),
    )
    def query_sql(
        sql: Annotated[str, Field(min_length=1, max_length=20_000, description="one SELECT statement")],
        max_rows: Annotated[
            int, Field(ge=1, le=MAX_ROWS, description=f"at most this many rows come back (1-{MAX_ROWS})")
        ] = 100,
        user_id: SqlUserId = None,
    ) -> QueryAnswer:
        visible = rows_visible_to(user_id)
        for _ in range(2):  # a second try only when a publish removed the file between pointer and open
            # Without a user (an admin's query of everyone) "today" is the machine's; it is not shown.
            with reading_if_published(runtime, visible or "") as current:
                if current is None:
                    raise ToolError("no serving snapshot has been published yet: nothing to query")
                try:
                    result = run_query(
                        current.info.path,
                        sql,
                        user_id=visible,
                        max_rows=max_rows,
                        timeout_s=QUERY_TIMEOUT_S,
                        samples_dir=runtime.settings.samples_dir,
                    )
                except QueryRefused as refused:
                    raise ToolError(f"query refused: {refused}") from None
                except SnapshotOpenFailed:
                    continue
                newest = current.newest_day if visible else current.newest_of_any_user()
                return QueryAnswer(
                    user_id=visible,
                    snapshot_generation=current.info.generation,
                    snapshot_age_seconds=round(current.info.age_seconds(), 3),
                    newest_synced_day=newest,
                    columns=result.columns,
                    column_types=result.column_types,
                    rows=result.rows,
                    row_count=result.row_count,
                    truncated=result.truncated,
                    elapsed_ms=result.elapsed_ms,
                    note=f"only the first {max_rows} rows are shown: aggregate, filter or LIMIT the query"
                    if result.truncated
                    else None,
                )
        raise ToolError("the snapshot changed twice during the query: try again")
