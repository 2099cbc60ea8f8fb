"""query_sql through MCP: the engine's refusals arrive as tool errors, and a runaway query is stopped.

The engine itself (``polar_api.read.sql_query``) has its own tests; these check what the tool does with it:
every escape is an error the model can read, a user's key sees only that user's rows, and the time limit
holds over the wire.
"""

from __future__ import annotations

import time

import pytest

from polar_api.mcp import tools_sql
from tests.mcp.support import McpSession, error_text
from tests.support.served import Served

ESCAPES = (
    "DROP TABLE marts.daily_metrics",
    "DELETE FROM marts.daily_metrics",
    "CREATE TABLE marts.copy AS SELECT * FROM marts.daily_metrics",
    "SELECT 1; SELECT 2",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "ATTACH '/tmp/elsewhere.duckdb' AS elsewhere",
    "COPY marts.daily_metrics TO '/tmp/out.csv'",
    "SELECT getenv('HOME')",
    "SELECT current_setting('memory_limit')",
    "INSTALL httpfs",
    "SET enable_external_access = true",
    "PRAGMA database_list",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM polar_snapshot_internal.marts.daily_metrics",
    "SELECT * FROM marts.no_such_table",
)


def test_every_escape_is_refused_as_a_tool_error(own: McpSession) -> None:
    for sql in ESCAPES:
        result = own.call("query_sql", {"sql": sql})
        text = error_text(result)
        assert result.is_error and "query refused:" in text, (sql, text)
        assert result.structured_content is None, sql


def test_a_users_key_sees_only_that_users_rows(own: McpSession, served: Served) -> None:
    seen = own.answer("query_sql", {"sql": "SELECT DISTINCT user_id FROM marts.daily_metrics"})
    assert seen["rows"] == [[served.users[0]]] and seen["user_id"] == served.users[0]
    capped = own.answer(
        "query_sql", {"sql": "SELECT day FROM marts.daily_metrics ORDER BY day", "max_rows": 5}
    )
    assert capped["row_count"] == 5 and capped["truncated"] and "first 5 rows" in capped["note"]


def test_a_runaway_query_is_stopped_at_its_time_limit(
    admin: McpSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTTP server runs in this process, so a shorter limit applies to the call."""
    monkeypatch.setattr(tools_sql, "QUERY_TIMEOUT_S", 1.0)
    started = time.monotonic()
    result = admin.call(
        "query_sql", {"sql": "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000000) b"}
    )
    elapsed = time.monotonic() - started
    assert result.is_error and "stopped after 1 s" in error_text(result), error_text(result)
    assert elapsed < 1.0 + 4.0, elapsed
    # The server is fine afterwards.
    assert admin.answer("query_sql", {"sql": "SELECT 42 AS answer"})["rows"] == [[42]]
