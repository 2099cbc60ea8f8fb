"""The columns and DuckDB types every public relation really has, found by building the models on an empty
in-memory database (raw tables, macros, views, then each table model's result shape).

The docs generator prints these types, and a test holds every model's YAML to exactly these columns, so a
column added to the SQL without a description (or described but gone) fails before it reaches the docs.
"""

from __future__ import annotations

from datetime import date

import duckdb

from polar_pipeline.sqlmodels.graph import ModelGraph
from polar_pipeline.sqlmodels.runner import create_views
from polar_pipeline.warehouse.schema import ensure_raw_schema
from polar_pipeline.warehouse.slices import columns_of

_ANY_DAY = date(2000, 1, 1)


def describe_relations(graph: ModelGraph) -> dict[str, list[tuple[str, str]]]:
    """``{relation: [(column, type), …]}`` for the raw tables, the views and the table models, in order."""
    con = duckdb.connect(":memory:")
    try:
        ensure_raw_schema(con)
        create_views(con, graph)
        shapes: dict[str, list[tuple[str, str]]] = {}
        for schema, table in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema = 'raw' ORDER BY table_name"
        ).fetchall():
            relation = f"{schema}.{table}"
            shapes[relation] = columns_of(con.execute(f"SELECT * FROM {relation} LIMIT 0"))
        for view in graph.views:
            shapes[view.relation] = columns_of(con.execute(f"SELECT * FROM {view.relation} LIMIT 0"))
        params = {"users": [], "first_day": _ANY_DAY, "last_day": _ANY_DAY, "read_from": _ANY_DAY}
        for model in graph.tables:
            bound = {key: params[key] for key in model.parameters}
            con.execute(
                f"CREATE TABLE {model.relation} AS SELECT * FROM (\n{model.sql}\n) AS model LIMIT 0", bound
            )
            shapes[model.relation] = columns_of(con.execute(f"SELECT * FROM {model.relation} LIMIT 0"))
        return shapes
    finally:
        con.close()
