"""What every public relation of the serving snapshot holds, for readers that write their own SQL (MCP).

Nothing here is written twice; each relation is described where it is defined:

* ``marts.*`` and ``raw.quarantine``: the SQL models' YAML contracts and header comments, with the types
  from building the models (``sqlmodels.catalog``): exactly what ``docs/sql.md`` prints.
* ``samples.*``: the sample store's kinds (``warehouse/samples.py``), as in ``docs/sql.md``.
* ``analytics.*``: each analytics function's module (its ``SCHEMA`` gives columns and types, its docstring
  the description), ``analytics.data_health`` (``health.py``) and the ``analytics.patterns`` view
  (``serving_views.py``); ``control.user_time_zones`` from ``warehouse/schema.py`` and ``user_zones.py``.
  Their columns have no per-column text anywhere yet, so ``description`` is empty for them; the methods
  behind the numbers are in ``docs/methods.md``.

Types come from DuckDB itself, by building empty copies of the relations from the same definitions the
writer uses, so they are the types a query sees. The models do not change while a process runs, so the
list is built once per process (about a second) and kept.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from types import ModuleType

import duckdb
import polars as pl

from polar_pipeline import health, user_zones
from polar_pipeline.sqlmodels.catalog import describe_relations
from polar_pipeline.sqlmodels.contracts import Contract
from polar_pipeline.sqlmodels.loader import load_models
from polar_pipeline.warehouse import serving_views
from polar_pipeline.warehouse.samples import SAMPLE_KINDS
from polar_pipeline.warehouse.schema import USER_TIME_ZONES_TABLE, ensure_raw_schema
from polar_pipeline.warehouse.serving_views import SERVING_VIEWS, serving_views_sql
from polar_pipeline.warehouse.slices import columns_of
from polar_pipeline.warehouse.snapshot import SERVED_SCHEMAS, SERVED_TABLES

ANALYTICS_MODULES: dict[str, str] = {
    "correlations": "polar_pipeline.analytics.correlations",
    "trends": "polar_pipeline.analytics.trends",
    "risk": "polar_pipeline.analytics.risk",
    "readiness": "polar_pipeline.analytics.readiness",
    "recovery": "polar_pipeline.analytics.recovery",
    "illness_watch": "polar_pipeline.analytics.illness",
    "insights": "polar_pipeline.analytics.insights",
}
"""``analytics.<table>`` -> the module whose function computes it (its ``SCHEMA`` is the table's shape)."""
METHODS_NOTE = "How each number is computed, with its reasons and references: docs/methods.md."


@dataclass(frozen=True)
class ColumnDoc:
    name: str
    type: str
    description: str
    """Empty where the relation's columns are not described one by one (see the module docstring)."""


@dataclass(frozen=True)
class TableDoc:
    """One public relation: what a row is, its columns with their DuckDB types, and its declared tests."""

    relation: str
    kind: str
    """``table`` or ``view``."""
    description: str
    columns: tuple[ColumnDoc, ...]
    tests: tuple[str, ...] = ()
    """The data tests declared on it, one sentence each (for the relations with a YAML contract)."""
    source: str = ""
    """Where it is defined and described, relative to the repository."""

    @property
    def schema(self) -> str:
        return self.relation.partition(".")[0]

    @property
    def name(self) -> str:
        return self.relation.partition(".")[2]

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def public_tables() -> list[TableDoc]:
    """Every relation the serving snapshot offers, in schema then name order (built once per process)."""
    return list(_public_tables())


def table_doc(relation: str) -> TableDoc | None:
    """The documentation of ``relation`` (``schema.table``, any case), or None for a relation not served."""
    wanted = relation.strip().lower()
    return next((doc for doc in _public_tables() if doc.relation == wanted), None)


@cache
def _public_tables() -> tuple[TableDoc, ...]:
    docs = [*_contract_docs(), *_sample_docs(), *_shape_docs()]
    return tuple(sorted(docs, key=lambda doc: doc.relation))


def _contract_docs() -> list[TableDoc]:
    """The marts and the served raw tables, from the SQL models' contracts (what docs/sql.md prints)."""
    graph = load_models()
    shapes = describe_relations(graph)
    docs = []
    for model in graph.relations:
        if model.schema in SERVED_SCHEMAS and model.materialized == "table":
            assert model.contract is not None, f"{model.relation} has no YAML contract"
            source = model.contract.path.relative_to(model.contract.path.parents[2]).as_posix()
            docs.append(_from_contract(model.relation, model.description, model.contract, shapes, source))
    for relation, contract in graph.sources.items():
        if relation in SERVED_TABLES:
            docs.append(
                _from_contract(relation, contract.description, contract, shapes, "dbt_like_sql/sources.yml")
            )
    return docs


def _from_contract(
    relation: str, description: str, contract: Contract, shapes: dict[str, list[tuple[str, str]]], source: str
) -> TableDoc:
    types = dict(shapes.get(relation, []))
    return TableDoc(
        relation=relation,
        kind="table",
        description=description,
        columns=tuple(ColumnDoc(c.name, types.get(c.name, "?"), c.description) for c in contract.columns),
        tests=tuple(
            f"{test.name} ({'blocking' if test.blocking else 'warn'}): {test.description}"
            for test in contract.tests
        ),
        source=source,
    )


def _sample_docs() -> list[TableDoc]:
    """The ``samples`` views, one per kind of series in the sample store (types as DuckDB names them)."""
    con = duckdb.connect(":memory:")
    try:
        shapes = {
            kind.name: columns_of(
                con.execute("SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {n}" for n, t in kind.column_types))
            )
            for kind in SAMPLE_KINDS
        }
    finally:
        con.close()
    return [
        TableDoc(
            relation=f"samples.{kind.name}",
            kind="view",
            description=(
                f"Per-sample series from the sample store (immutable Parquet segments under "
                f"$POLAR_HOME/samples/{kind.name}/, derived from `{kind.raw_table}`): for each record "
                f"({', '.join(kind.keys)}) the series of its newest payload."
            ),
            columns=tuple(ColumnDoc(name, column_type, "") for name, column_type in shapes[kind.name]),
            source="polar_pipeline/warehouse/samples.py",
        )
        for kind in SAMPLE_KINDS
    ]


def _shape_docs() -> list[TableDoc]:
    """The analytics tables, the patterns view, data health and the users' time zones: columns and types
    from an empty copy built in memory from the writer's own definitions."""
    con = duckdb.connect(":memory:")
    try:
        ensure_raw_schema(con)
        con.execute("CREATE SCHEMA analytics")
        con.execute(health.DATA_HEALTH_DDL)
        modules = {name: importlib.import_module(path) for name, path in ANALYTICS_MODULES.items()}
        for name, module in modules.items():
            con.register("empty_frame", pl.DataFrame(schema=module.SCHEMA))
            con.execute(f"CREATE TABLE analytics.{name} AS SELECT * FROM empty_frame")
            con.unregister("empty_frame")
        present = {f"analytics.{name}" for name in modules}
        for statement in serving_views_sql(present):
            con.execute(statement)

        def shape(relation: str) -> list[tuple[str, str]]:
            return columns_of(con.execute(f"SELECT * FROM {relation} LIMIT 0"))

        described: list[tuple[str, str, ModuleType]] = [
            *((f"analytics.{name}", "table", module) for name, module in modules.items()),
            *((view, "view", serving_views) for view in SERVING_VIEWS),
            (health.DATA_HEALTH_TABLE, "table", health),
            (USER_TIME_ZONES_TABLE, "table", user_zones),
        ]
        return [
            TableDoc(
                relation=relation,
                kind=kind,
                description=_summary(module, relation),
                columns=tuple(ColumnDoc(name, column_type, "") for name, column_type in shape(relation)),
                source=module.__name__.replace(".", "/") + ".py",
            )
            for relation, kind, module in described
        ]
    finally:
        con.close()


def _summary(module: ModuleType, relation: str) -> str:
    """What the relation is and what one row is, from the docstring of the module that defines it.

    The docstring's first paragraph, unless it is about a module of several relations, then the first
    sentence of the paragraph that names ``relation`` when it tells what a row is. Analytics tables point
    to docs/methods.md for the method.
    """
    text = (inspect.getdoc(module) or "").replace("``", "`")
    paragraphs = [" ".join(part.split()) for part in re.split(r"\n\s*\n", text) if part.strip()]
    named = next((p for p in paragraphs if f"`{relation}`" in p), "")
    sentences = [] if named.startswith(f"`{relation}`") and relation in SERVING_VIEWS else paragraphs[:1]
    if " row" in named:
        sentences.append(_first_sentence(named))
    if not named and len(paragraphs) > 1 and paragraphs[1].startswith("One row"):
        sentences.append(_first_sentence(paragraphs[1]))
    summary = " ".join(s if s.endswith((".", "?", "!")) else s.rstrip(":") + "." for s in sentences)
    methods = relation.partition(".")[2] in ANALYTICS_MODULES or relation in SERVING_VIEWS
    return f"{summary} {METHODS_NOTE}" if methods else summary


def _first_sentence(text: str, ends: str = ".:?!") -> str:
    """``text`` up to the first whitespace after one of ``ends``."""
    return re.split(rf"(?<=[{re.escape(ends)}])\s", text, maxsplit=1)[0]


def render_table_markdown(doc: TableDoc) -> str:
    """One relation as markdown: what it is, each column with its type and description, its tests."""
    lines = [
        f"# `{doc.relation}`",
        "",
        f"*{doc.kind}.* {doc.description}",
        "",
        "| column | type | description |",
        "|---|---|---|",
    ]
    lines += [f"| `{c.name}` | {c.type} | {_cell(c.description) or '—'} |" for c in doc.columns]
    if doc.tests:
        lines += ["", "Data tests declared on it (*blocking* ones stop downstream assets when they fail):"]
        lines += [f"- {test}" for test in doc.tests]
    if doc.source:
        lines += ["", f"Defined in `{doc.source}`."]
    return "\n".join(lines) + "\n"


def render_index_markdown(docs: Iterable[TableDoc], link: Callable[[TableDoc], str] | None = None) -> str:
    """Every relation with its kind and description, grouped by schema; ``link`` gives each one's address
    (a resource URI) when the caller has one."""
    docs = list(docs)
    lines = [
        "# Public tables of the serving snapshot",
        "",
        "Name each table `schema.table` (for example `marts.daily_metrics`). Every table has a `user_id` "
        "column; a caller with a user's key sees only that user's rows. Days are local calendar dates "
        "(`day`), sleep and Nightly Recharge sit on the wake-up day.",
    ]
    for schema in sorted({doc.schema for doc in docs}):
        lines += ["", f"## {schema}", "", "| relation | kind | columns | description |", "|---|---|---|---|"]
        for doc in (d for d in docs if d.schema == schema):
            name = f"[`{doc.relation}`]({link(doc)})" if link else f"`{doc.relation}`"
            summary = _cell(_first_sentence(doc.description, ".?!"))
            lines.append(f"| {name} | {doc.kind} | {len(doc.columns)} | {summary} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
