"""One read-only SELECT over the public tables of a serving snapshot, for callers that write their own SQL.

The MCP tool ``query_sql`` lets a model ask what the REST routes do not cover. The SQL comes from outside,
so three guards stand between it and anything but the public rows it may see:

1. **Checked before it runs, with DuckDB's own parser.** ``extract_statements`` must find exactly one
   statement and it must be a SELECT (``WITH``, ``UNION``, ``FROM``-first, ``VALUES``, ``DESCRIBE`` and
   ``SUMMARIZE`` of a public table are SELECTs too); ``json_serialize_sql`` then gives its whole tree, and
   every table it names must be a public relation written ``schema.table`` (``marts.daily_metrics``) or a CTE
   of the query, every table function must be a pure generator (``range``, ``generate_series``, ``unnest``),
   and no function may read the environment or the settings. The parser that checks is the parser that
   runs the query, so no construct can look harmless to the check and mean something else to DuckDB.
2. **Only the caller's rows exist under the public names.** The query runs on a fresh in-memory database
   that attaches the snapshot read-only under an internal name (``INTERNAL_CATALOG``, which the check
   refuses) and defines each public name as a view over it; for a user-scoped caller each view keeps only
   ``user_id = <that user>``. Whatever the query says, the only rows it can reach are those.
3. **No file, network or setting is reachable, even by a function nobody foresaw.** Before the query runs
   the connection turns ``enable_external_access`` off (the sample store's folder alone stays readable, for
   the ``samples`` views), disables extension autoloading and installing, has no temporary directory to
   write to, and locks its configuration.

A timer interrupts the query after ``timeout_s`` (the connection is closed, nothing keeps running), and at
most ``max_rows`` rows come back, with ``truncated`` saying whether there were more.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import difflib
import json
import math
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from polar_pipeline.control_store import USER_ID_PATTERN
from polar_pipeline.warehouse.snapshot import (
    GENERATION_PATTERN,
    SERVED_SCHEMAS,
    SERVED_TABLES,
    SnapshotOpenFailed,
)

INTERNAL_CATALOG = "polar_snapshot_internal"
"""The name the snapshot file is attached under; queries may not name it (they read the public views)."""
PUBLIC_SCHEMAS: tuple[str, ...] = (*SERVED_SCHEMAS, "samples")
"""Every relation of these schemas in the snapshot is public, with ``SERVED_TABLES``."""
SAMPLES_SCHEMA = "samples"
"""Views over the sample store's Parquet files: offered only when the caller names the store's folder."""
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
"""Table functions that only generate values (no catalog, file or network behind them)."""
REFUSED_FUNCTIONS = frozenset({"getenv", "current_setting", "getvariable"})
"""Scalar functions that reveal the process's environment or the connection's settings."""
REFUSED_FUNCTION_PREFIXES = (
    "read_",
    "duckdb_",
    "pragma_",
    "glob",
    "sniff_",
    "parquet_",
    "query",
    "json_execute",
)
"""Name prefixes of functions that read files or the catalog (most are table functions, refused anyway)."""
MEMORY_LIMIT = "1GB"
"""What one query may hold in memory; a query that needs more fails (there is nowhere to spill)."""


class QueryRefused(ValueError):
    """The SQL was not run (or was stopped): the message says why and what to write instead."""


class QueryTimeout(QueryRefused):
    """The query ran past its time limit and was interrupted."""


class QueryFailed(QueryRefused):
    """DuckDB rejected the (allowed) query: a misspelt column, a type error; the message is DuckDB's."""


@dataclass(frozen=True)
class QueryResult:
    """A query's answer: column names and types, rows as JSON-ready lists, and whether rows were cut off."""

    columns: list[str]
    column_types: list[str]
    rows: list[list[Any]]
    truncated: bool
    row_count: int
    elapsed_ms: float
    generation: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "column_types": self.column_types,
            "rows": self.rows,
            "row_count": self.row_count,
            "truncated": self.truncated,
            "elapsed_ms": self.elapsed_ms,
            "generation": self.generation,
        }


def run_query(
    snapshot_path: Path,
    sql: str,
    *,
    user_id: str | None,
    max_rows: int = 500,
    timeout_s: float = 5.0,
    samples_dir: Path | None = None,
) -> QueryResult:
    """Run one checked SELECT over the public relations of the snapshot file at ``snapshot_path``.

    ``user_id`` None is an admin caller (every user's rows); otherwise only that user's rows are visible.
    ``samples_dir`` is the sample store's folder (``Settings.samples_dir``); without it the ``samples`` views
    are not offered. Raises ``QueryRefused`` (``QueryTimeout``, ``QueryFailed``) with a message meant for
    the one who wrote the SQL, and ``SnapshotOpenFailed`` when the file cannot be attached (a publish
    removed it since the pointer was read: read the pointer again).
    """
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    if user_id is not None and not USER_ID_PATTERN.fullmatch(user_id):
        raise ValueError(f"not a user id: {user_id!r}")
    started = time.perf_counter()
    con = duckdb.connect(
        ":memory:",
        config={
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "temp_directory": "",
            "memory_limit": MEMORY_LIMIT,
        },
    )
    try:
        statement = _single_select(con, sql)
        relations = _attach_public_views(con, snapshot_path, user_id, samples_dir)
        reserved = _search_path_names(con)
        try:
            check_query_tree(_parse_tree(con, statement), relations, reserved)
        except RecursionError:
            raise QueryRefused("the query is nested too deeply to be checked; flatten it with CTEs") from None
        _lock_down(con, samples_dir if _uses_samples(relations) else None)
        return _execute(con, statement, max_rows, timeout_s, started, _generation(snapshot_path))
    finally:
        con.close()


def _single_select(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The text of the one SELECT statement in ``sql``; refuses anything else, naming what it found."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"the SQL does not parse: {_first_line(exc)}") from None
    if not statements:
        raise QueryRefused("no SQL statement was given: write one SELECT")
    if len(statements) > 1:
        raise QueryRefused(
            f"{len(statements)} statements were given; send exactly one SELECT (no ';' between statements)"
        )
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        words = statement.query.split()
        kind = words[0].upper() if words else statement.type.name
        raise QueryRefused(
            f"{kind} statements are refused: only one read-only SELECT (WITH … SELECT, UNION, DESCRIBE or "
            "SUMMARIZE of a public table) is run here; nothing can be written, attached, installed or set"
        )
    return str(statement.query)


def _parse_tree(con: duckdb.DuckDBPyConnection, statement: str) -> Any:
    """DuckDB's own parse tree of the statement (its JSON serialisation)."""
    row = con.execute("SELECT json_serialize_sql($statement)", {"statement": statement}).fetchone()
    tree = json.loads(row[0]) if row else {"error": True, "error_message": "no parse tree"}
    if tree.get("error"):
        raise QueryRefused(
            f"this SELECT cannot be checked: {tree.get('error_message')}; write a plain SELECT"
        )
    return tree["statements"]


@dataclass(frozen=True)
class PublicRelations:
    """The public relations this caller may name (lower-case ``schema.table``), and every one that exists."""

    offered: frozenset[str]
    withheld: dict[str, str]
    """relation -> why this caller cannot use it (e.g. no sample store given)."""


def _attach_public_views(
    con: duckdb.DuckDBPyConnection, snapshot_path: Path, user_id: str | None, samples_dir: Path | None
) -> PublicRelations:
    """Attach the snapshot read-only and define each public relation under its own name, filtered to
    ``user_id`` when the caller is user-scoped."""
    try:
        con.execute(f"ATTACH {_sql_string(snapshot_path.as_posix())} AS {INTERNAL_CATALOG} (READ_ONLY)")
    except duckdb.Error as exc:  # unlinked by a publish since the pointer was read, or never there
        raise SnapshotOpenFailed(
            f"could not open the snapshot {snapshot_path.name}: {_first_line(exc)}"
        ) from None
    listed = con.execute(
        "SELECT t.table_schema, t.table_name, bool_or(c.column_name = 'user_id') AS has_user "
        "FROM information_schema.tables AS t JOIN information_schema.columns AS c "
        "ON c.table_catalog = t.table_catalog AND c.table_schema = t.table_schema "
        "AND c.table_name = t.table_name "
        "WHERE t.table_catalog = $catalog "
        "AND (list_contains($schemas, t.table_schema) OR list_contains($tables, t.table_schema || '.' || "
        "t.table_name)) GROUP BY ALL ORDER BY ALL",
        {"catalog": INTERNAL_CATALOG, "schemas": list(PUBLIC_SCHEMAS), "tables": list(SERVED_TABLES)},
    ).fetchall()
    offered: set[str] = set()
    withheld: dict[str, str] = {}
    filter_sql = "" if user_id is None else f" WHERE user_id = {_sql_string(user_id)}"
    for schema, table, has_user in listed:
        relation = f"{schema}.{table}".lower()
        if schema == SAMPLES_SCHEMA and samples_dir is None:
            withheld[relation] = "the sample store is not available to this query tool"
            continue
        if user_id is not None and not has_user:
            withheld[relation] = "it has no user_id column, so it is not offered to a user-scoped caller"
            continue
        con.execute(f'CREATE SCHEMA IF NOT EXISTS memory."{schema}"')
        try:
            con.execute(
                f'CREATE VIEW memory."{schema}"."{table}" AS '
                f'SELECT * FROM {INTERNAL_CATALOG}."{schema}"."{table}"{filter_sql}'
            )
        except duckdb.Error:  # a samples view whose Parquet files are gone: the others still work
            withheld[relation] = "its files cannot be read now (the sample store is incomplete)"
            continue
        offered.add(relation)
    return PublicRelations(offered=frozenset(offered), withheld=withheld)


def _uses_samples(relations: PublicRelations) -> bool:
    return any(relation.startswith(f"{SAMPLES_SCHEMA}.") for relation in relations.offered)


def _search_path_names(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Names an unqualified table reference could resolve to outside the query (catalog views such as
    ``pg_class`` or ``duckdb_tables``): a CTE may not take one of these names, so an unqualified name is
    always the query's own CTE."""
    rows = con.execute(
        "SELECT lower(view_name) FROM duckdb_views() WHERE database_name IN ('system', 'temp', 'memory') "
        "AND schema_name IN ('main', 'pg_catalog') "
        "UNION SELECT lower(table_name) FROM duckdb_tables() "
        "WHERE database_name IN ('system', 'temp', 'memory') AND schema_name IN ('main', 'pg_catalog')"
    ).fetchall()
    return frozenset(str(name) for (name,) in rows)


def _lock_down(con: duckdb.DuckDBPyConnection, samples_dir: Path | None) -> None:
    """No file or network access (but the sample store's folder), no extensions, no setting changes."""
    if samples_dir is not None:
        folders = sorted({path.as_posix().rstrip("/") + "/" for path in (samples_dir, samples_dir.resolve())})
        con.execute(f"SET allowed_directories = [{', '.join(_sql_string(folder) for folder in folders)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET allow_community_extensions = false")
    con.execute("SET lock_configuration = true")


def check_query_tree(tree: Any, relations: PublicRelations, reserved: frozenset[str] = frozenset()) -> None:
    """Refuse the parse tree unless every table it names is offered (or a CTE of the query) and every
    function it calls is allowed; the message names the first offence."""
    for problem in _problems(tree, frozenset(), relations, reserved):
        raise QueryRefused(problem)


def _problems(
    node: Any, ctes: frozenset[str], relations: PublicRelations, reserved: frozenset[str]
) -> Iterator[str]:
    """Every reason to refuse, walking the tree with the CTE names in scope at each node."""
    if isinstance(node, list):
        for item in node:
            yield from _problems(item, ctes, relations, reserved)
        return
    if not isinstance(node, dict):
        return
    cte_map = node.get("cte_map")
    if isinstance(cte_map, dict):
        names = {str(entry.get("key", "")).lower() for entry in cte_map.get("map", [])}
        taken = sorted(names & reserved)
        if taken:
            yield f"the CTE name {taken[0]!r} is the name of a system catalog view; rename the CTE"
        ctes = ctes | names
    kind = node.get("type")
    if "class" not in node and kind == "BASE_TABLE":
        yield from _table_problems(node, ctes, relations)
    elif "class" not in node and kind == "TABLE_FUNCTION":
        function = node.get("function") or {}
        name = str(function.get("function_name", "")).lower()
        if name not in TABLE_FUNCTIONS or function.get("schema") or function.get("catalog"):
            yield (
                f"the table function {name}(…) is refused: read the public tables by name "
                f"(schema.table); only {', '.join(sorted(TABLE_FUNCTIONS))} may be used in FROM"
            )
    elif "class" not in node and kind == "SHOW_REF" and node.get("query") is None:
        yield (
            "SHOW … is refused: the catalog is not queryable here; the public tables and their columns are "
            "listed in the table documentation (or DESCRIBE schema.table one of them)"
        )
    elif "class" not in node and kind in ("COLUMN_DATA", "DELIM_GET", "BOUND_TABLE_REF", "CTE", "INVALID"):
        yield f"this query form ({kind}) is not supported here; write a plain SELECT"
    if "function_name" in node:
        yield from _function_problems(node)
    for key, value in node.items():
        if key != "cte_map":
            yield from _problems(value, ctes, relations, reserved)
    if isinstance(cte_map, dict):
        yield from _problems(cte_map, ctes, relations, reserved)


def _table_problems(node: dict[str, Any], ctes: frozenset[str], relations: PublicRelations) -> Iterator[str]:
    catalog = str(node.get("catalog_name") or "")
    schema = str(node.get("schema_name") or "")
    table = str(node.get("table_name") or "")
    path = [str(part) for part in (node.get("qualified_name") or {}).get("path", [])]
    shown = ".".join(part for part in (catalog, schema, table) if part) or table
    if catalog or len(path) > 2:
        if catalog.lower() == INTERNAL_CATALOG:
            yield f"{shown}: the snapshot's internal catalog cannot be read; name tables schema.table"
        else:
            yield f"{shown}: name tables schema.table (for example marts.daily_metrics), without a catalog"
        return
    if not schema:
        if table.lower() in ctes:
            return
        yield f"{table!r} is not a table here: {_what_is_offered(table, relations)}"
        return
    relation = f"{schema}.{table}".lower()
    if relation in relations.offered:
        return
    if relation in relations.withheld:
        yield f"{relation} cannot be queried: {relations.withheld[relation]}"
        return
    yield f"{schema}.{table} is not a public table: {_what_is_offered(relation, relations)}"


def _what_is_offered(name: str, relations: PublicRelations) -> str:
    close = difflib.get_close_matches(name.lower(), sorted(relations.offered), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"{hint}the public tables are {', '.join(sorted(relations.offered))}"


def _function_problems(node: dict[str, Any]) -> Iterator[str]:
    name = str(node.get("function_name", "")).lower()
    if node.get("catalog") or (node.get("schema") and str(node.get("schema")).lower() != "main"):
        yield f"call functions unqualified (not {node.get('schema')}.{name}(…))"
    elif name in REFUSED_FUNCTIONS or name.startswith(REFUSED_FUNCTION_PREFIXES):
        yield f"the function {name}(…) is refused: it reads files, the catalog, settings or the environment"


def _execute(
    con: duckdb.DuckDBPyConnection,
    statement: str,
    max_rows: int,
    timeout_s: float,
    started: float,
    generation: int | None,
) -> QueryResult:
    """Run the checked statement under a timer that interrupts it; at most ``max_rows`` rows come back."""
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        relation = con.sql(statement)
        if relation is None:  # only statements without a result return None; a SELECT always has one
            raise QueryRefused("the statement returned no result: write one SELECT")
        columns = list(relation.columns)
        column_types = [str(column_type) for column_type in relation.types]
        fetched = relation.limit(max_rows + 1).fetchall()
    except duckdb.InterruptException:
        raise QueryTimeout(
            f"the query was stopped after {timeout_s:g} s (the time limit): narrow it with a WHERE on "
            "user_id and day, aggregate, or avoid cross joins"
        ) from None
    except duckdb.OutOfMemoryException:
        raise QueryFailed(
            f"the query needs more than {MEMORY_LIMIT} of memory: aggregate, filter on user_id and day, or "
            "avoid cross joins"
        ) from None
    except duckdb.Error as exc:
        raise QueryFailed(f"DuckDB could not run the query: {str(exc).strip()}") from None
    finally:
        timer.cancel()
    rows = [[json_ready(value) for value in row] for row in fetched[:max_rows]]
    return QueryResult(
        columns=columns,
        column_types=column_types,
        rows=rows,
        truncated=len(fetched) > max_rows,
        row_count=len(rows),
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
        generation=generation,
    )


def json_ready(value: Any) -> Any:
    """A DuckDB value as plain JSON: ISO dates and times, seconds for intervals, floats for decimals, None
    for NaN and infinities, lists for lists and dicts for structs and maps."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return json_ready(float(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, Iterable):
        return [json_ready(item) for item in value]
    return str(value)


def _generation(snapshot_path: Path) -> int | None:
    match = GENERATION_PATTERN.match(snapshot_path.name)
    return int(match.group(1)) if match else None


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
