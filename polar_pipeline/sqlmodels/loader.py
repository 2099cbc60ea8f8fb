"""Read the ``dbt_like_sql/`` folder into a validated graph of SQL models, without Jinja.

One ``.sql`` file is one model; its folder is its schema (``staging/sleep.sql`` → ``staging.sleep``). A file
starts with ``--`` comment lines: ``-- key: value`` lines with a known key configure it (``materialized``,
``window_days``, ``grain``; a near miss such as ``window_day`` is an error), every other line is its
description. The body may use two template forms, rendered by regex:

* ``{{ ref('name') }}`` → the relation of another model (``marts.daily_metrics``);
* ``{{ source('raw', 'sleep') }}`` → a raw table written by the ingest assets (``raw.sleep``);

and the run parameters ``$users``, ``$first_day``, ``$last_day`` and ``$read_from``, which stay in the SQL and
are bound as DuckDB prepared-statement parameters. Everything is checked when the graph loads — unknown refs,
cycles, tables named without ``ref()``/``source()``, unknown parameters, SQL that does not parse — and every
error names the file, so a broken model fails definitions loading instead of a run.

The ``macros/`` folder is not a schema: each file there is one scalar DuckDB macro,
``CREATE OR REPLACE MACRO <file stem>(args) AS <expression>``, created in the ``staging`` schema before the
views (in the same transaction). Models call them schema-qualified, ``staging.iso_duration_seconds(text)``,
so logic written once serves every view; a macro is a catalog entry, so ``COPY FROM DATABASE`` carries it
into the serving snapshot together with the views that call it.
"""

from __future__ import annotations

import difflib
import graphlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from polar_pipeline.warehouse import RAW_TABLES

DEFAULT_SQL_DIR = Path(__file__).resolve().parents[3] / "dbt_like_sql"
"""The repository's ``dbt_like_sql/`` folder (the package runs from a source checkout)."""

PARAMETERS: tuple[str, ...] = ("users", "first_day", "last_day", "read_from")
"""Named parameters a model may use: the run's users, its inclusive day range, and first_day - window_days."""

HEADER_KEYS: tuple[str, ...] = ("materialized", "window_days", "grain")
SOURCE_SCHEMA = "raw"
MACRO_FOLDER = "macros"
"""The folder of ``dbt_like_sql/`` that holds macros, one per file, instead of models."""
MACRO_SCHEMA = "staging"
"""Where the macros are created: a schema the warehouse and every serving snapshot have (the views' own)."""

Materialization = Literal["view", "table"]

_REF_RE = re.compile(r"\{\{\s*ref\(\s*(?P<q>['\"])(?P<name>[^'\"]*)(?P=q)\s*\)\s*\}\}")
_SOURCE_RE = re.compile(
    r"\{\{\s*source\(\s*(?P<q1>['\"])(?P<schema>[^'\"]*)(?P=q1)\s*,"
    r"\s*(?P<q2>['\"])(?P<table>[^'\"]*)(?P=q2)\s*\)\s*\}\}"
)
_ANY_TEMPLATE_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_HEADER_SETTING_RE = re.compile(r"^--\s*(?P<key>[a-z][a-z0-9_]*)\s*:\s*(?P<value>.*?)\s*$")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MACRO_HEAD_RE = re.compile(
    r"CREATE\s+OR\s+REPLACE\s+MACRO\s+(?:(?P<schema>[A-Za-z_][A-Za-z0-9_]*)\s*\.\s*)?"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\(",
    re.IGNORECASE,
)


class SqlModelError(ValueError):
    """A model file is invalid; the message starts with the file's path."""


@dataclass(frozen=True)
class SourceTable:
    """A raw table read through ``{{ source('raw', name) }}``; the ``raw_<name>`` asset writes it."""

    schema: str
    table: str

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class SqlModel:
    """One parsed model file: identity, header settings, dependencies, SQL before and after rendering."""

    name: str
    schema: str
    path: Path
    description: str
    materialized: Materialization
    window_days: int
    grain: tuple[str, ...]
    refs: tuple[str, ...]
    sources: tuple[SourceTable, ...]
    template: str
    sql: str
    parameters: frozenset[str]
    macros: tuple[str, ...] = ()

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class SqlMacro:
    """One macro file: ``CREATE OR REPLACE MACRO <name>(…)``, rendered into ``MACRO_SCHEMA``."""

    name: str
    path: Path
    description: str
    template: str
    sql: str

    @property
    def relation(self) -> str:
        return f"{MACRO_SCHEMA}.{self.name}"


@dataclass(frozen=True)
class ModelGraph:
    """All models keyed by name in dependency order (every model after the models it refs); the macros."""

    sql_dir: Path
    models: Mapping[str, SqlModel]
    macros: Mapping[str, SqlMacro] = field(default_factory=dict)

    def __iter__(self) -> Iterator[SqlModel]:
        return iter(self.models.values())

    def __getitem__(self, name: str) -> SqlModel:
        return self.models[name]

    @property
    def views(self) -> list[SqlModel]:
        return [model for model in self if model.materialized == "view"]

    @property
    def tables(self) -> list[SqlModel]:
        return [model for model in self if model.materialized == "table"]

    @property
    def schemas(self) -> list[str]:
        return sorted({model.schema for model in self})


@dataclass(frozen=True)
class _Header:
    description: str
    settings: dict[str, str]


def load_models(sql_dir: Path = DEFAULT_SQL_DIR) -> ModelGraph:
    """Parse every ``**/*.sql`` under ``sql_dir``, render refs and sources, and validate the whole graph.

    Files under ``macros/`` are macros (see ``load_macros``), every other file is a model.
    """
    sql_dir = Path(sql_dir)
    if not sql_dir.is_dir():
        raise SqlModelError(f"{sql_dir}: SQL model folder not found")
    macros = load_macros(sql_dir)
    drafts: dict[str, tuple[Path, str, _Header, str]] = {}
    for path in sorted(sql_dir.rglob("*.sql")):
        relative = path.relative_to(sql_dir)
        if relative.parts[0] == MACRO_FOLDER:
            continue
        if len(relative.parts) < 2:
            raise SqlModelError(f"{path}: put the model in a schema folder (staging/, marts/)")
        schema, name = relative.parts[0], path.stem
        for identifier, what in ((schema, "schema folder"), (name, "model name")):
            if not _IDENTIFIER_RE.fullmatch(identifier):
                raise SqlModelError(f"{path}: {what} {identifier!r} is not a SQL identifier")
        if schema == SOURCE_SCHEMA:
            raise SqlModelError(f"{path}: the {SOURCE_SCHEMA!r} schema belongs to the ingest assets")
        if name in drafts:
            raise SqlModelError(f"{path}: model name {name!r} is already used by {drafts[name][0]}")
        text = path.read_text(encoding="utf-8")
        drafts[name] = (path, schema, _parse_header(path, text), text)
    if not drafts:
        raise SqlModelError(f"{sql_dir}: no .sql model files found")

    relations = {name: f"{schema}.{name}" for name, (_, schema, _, _) in drafts.items()}
    models: dict[str, SqlModel] = {}
    for name, (path, schema, header, text) in drafts.items():
        models[name] = _build_model(path, name, schema, header, text, relations, macros)
    _check_view_dependencies(models)
    return ModelGraph(
        sql_dir=sql_dir,
        models={name: models[name] for name in _dependency_order(models)},
        macros=macros,
    )


def load_macros(sql_dir: Path = DEFAULT_SQL_DIR) -> dict[str, SqlMacro]:
    """Read ``sql_dir/macros/*.sql``: each file one scalar macro named like the file, sorted by name.

    A file must start with a description comment and hold exactly one ``CREATE OR REPLACE MACRO <stem>(…) AS
    <expression>`` (no table macro, no template syntax, no call to another macro of the folder: DuckDB binds
    a macro's body when it is created, so a macro calling another would depend on the creation order). The
    name is written unqualified (or as ``staging.<stem>``); it is rendered into ``MACRO_SCHEMA``.
    """
    folder = Path(sql_dir) / MACRO_FOLDER
    if not folder.is_dir():
        return {}
    nested = sorted(path for path in folder.rglob("*.sql") if path.parent != folder)
    if nested:
        raise SqlModelError(f"{nested[0]}: put macro files directly in {folder}, one macro per file")
    macros: dict[str, SqlMacro] = {}
    for path in sorted(folder.glob("*.sql")):
        macro = _build_macro(path)
        macros[macro.name] = macro
    for macro in macros.values():
        called = sorted(_function_names(_parse_macro(macro.path, macro.sql).expression) & set(macros))
        if called:
            raise SqlModelError(
                f"{macro.path}: a macro may not call another macro ({', '.join(called)}); write the "
                "expression out, or call both from the model"
            )
    return macros


def _build_macro(path: Path) -> SqlMacro:
    name = path.stem
    if not _IDENTIFIER_RE.fullmatch(name):
        raise SqlModelError(f"{path}: macro name {name!r} is not a SQL identifier")
    text = path.read_text(encoding="utf-8")
    header = _parse_header(path, text, what="macro")
    if header.settings:
        raise SqlModelError(
            f"{path}: a macro takes no header settings ({', '.join(sorted(header.settings))}); "
            "only a description"
        )
    if _ANY_TEMPLATE_RE.search(text):
        raise SqlModelError(f"{path}: a macro cannot use template expressions ({{{{ ... }}}})")
    body = _strip_header(text).strip().rstrip(";").strip()
    head = _MACRO_HEAD_RE.match(body)
    if head is None:
        raise SqlModelError(
            f"{path}: a macro file holds exactly one `CREATE OR REPLACE MACRO {name}(args) AS expression`"
        )
    if head["schema"] is not None and head["schema"].lower() != MACRO_SCHEMA:
        raise SqlModelError(
            f"{path}: macros live in the {MACRO_SCHEMA!r} schema; "
            f"write {name}(...) without {head['schema']!r}"
        )
    if head["name"].lower() != name.lower():
        raise SqlModelError(
            f"{path}: the file defines macro {head['name']!r}; "
            f"a macro's name must match its file name ({name!r})"
        )
    sql = f"CREATE OR REPLACE MACRO {MACRO_SCHEMA}.{name}(" + body[head.end() :]
    created = _parse_macro(path, sql)
    if created.args.get("properties") is not None:
        raise SqlModelError(f"{path}: only scalar macros are supported (`AS expression`, not `AS TABLE`)")
    return SqlMacro(name=name, path=path, description=header.description, template=text, sql=sql)


def _parse_macro(path: Path, sql: str) -> exp.Create:
    """The macro's one statement as sqlglot sees it; anything but one scalar CREATE MACRO is an error."""
    try:
        statements = [statement for statement in sqlglot.parse(sql, read="duckdb") if statement is not None]
    except SqlglotError as error:
        raise SqlModelError(f"{path}: the macro does not parse: {error}") from None
    if (
        len(statements) != 1
        or not isinstance(statements[0], exp.Create)
        or str(statements[0].args.get("kind", "")).upper() != "MACRO"
        or not isinstance(statements[0].expression, exp.Expr)
    ):
        raise SqlModelError(
            f"{path}: a macro file holds exactly one "
            f"`CREATE OR REPLACE MACRO {path.stem}(args) AS expression`"
        )
    return statements[0]


def _function_names(tree: exp.Expr) -> set[str]:
    """Lower-case names of the functions called anywhere in ``tree`` (qualified or not)."""
    return {node.name.lower() for node in tree.find_all(exp.Anonymous)}


def _strip_header(text: str) -> str:
    """The file after its leading comment and blank lines."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            return "".join(lines[index:])
    return ""


def _parse_header(path: Path, text: str, what: str = "model") -> _Header:
    description: list[str] = []
    settings: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            if description or settings:
                break
            continue
        if not stripped.startswith("--"):
            break
        setting = _HEADER_SETTING_RE.match(stripped)
        if setting is not None and setting["key"] not in HEADER_KEYS:
            near = difflib.get_close_matches(setting["key"], HEADER_KEYS, n=1, cutoff=0.8)
            if near:
                raise SqlModelError(
                    f"{path}: unknown header key {setting['key']!r}; did you mean {near[0]!r}?"
                )
            setting = None  # an ordinary description line such as "-- status: ready n >= 21 ..."
        if setting is not None:
            key = setting["key"]
            if key in settings:
                raise SqlModelError(f"{path}: header key {key!r} is set twice")
            settings[key] = setting["value"]
        else:
            description.append(stripped[2:].strip())
    if not description:
        raise SqlModelError(f"{path}: start the file with a comment that describes the {what}")
    return _Header(description=" ".join(part for part in description if part), settings=settings)


def _build_model(
    path: Path,
    name: str,
    schema: str,
    header: _Header,
    text: str,
    relations: Mapping[str, str],
    macros: Mapping[str, SqlMacro],
) -> SqlModel:
    materialized = header.settings.get("materialized", "table")
    if materialized not in ("view", "table"):
        raise SqlModelError(f"{path}: materialized must be 'view' or 'table', not {materialized!r}")
    window_text = header.settings.get("window_days", "0")
    if not window_text.isdigit():
        raise SqlModelError(f"{path}: window_days must be a whole number of days >= 0, not {window_text!r}")
    window_days = int(window_text)
    if materialized == "view" and window_days:
        raise SqlModelError(f"{path}: window_days applies to table models; a view reads whatever it selects")
    grain = tuple(
        part.strip() for part in header.settings.get("grain", "user_id, day").split(",") if part.strip()
    )
    if materialized == "table" and grain[:2] != ("user_id", "day"):
        raise SqlModelError(
            f"{path}: a table model is partitioned by user and day; its grain starts user_id, day"
        )

    refs: list[str] = []
    sources: list[SourceTable] = []

    def render_ref(match: re.Match[str]) -> str:
        ref = match["name"]
        if ref not in relations:
            raise SqlModelError(f"{path}: unknown ref {ref!r} (models: {', '.join(sorted(relations))})")
        if ref == name:
            raise SqlModelError(f"{path}: the model refs itself")
        if ref not in refs:
            refs.append(ref)
        return relations[ref]

    def render_source(match: re.Match[str]) -> str:
        source = SourceTable(match["schema"], match["table"])
        if source.schema != SOURCE_SCHEMA or source.table not in RAW_TABLES:
            raise SqlModelError(
                f"{path}: unknown source {source.relation!r} (sources: "
                f"{', '.join(f'{SOURCE_SCHEMA}.{table}' for table in sorted(RAW_TABLES))})"
            )
        if source not in sources:
            sources.append(source)
        return source.relation

    body = _REF_RE.sub(render_ref, text)
    body = _SOURCE_RE.sub(render_source, body)
    leftover = _ANY_TEMPLATE_RE.search(body)
    if leftover is not None:
        raise SqlModelError(
            f"{path}: unsupported template expression {leftover.group(0)!r} "
            "(only {{ ref('model') }} and {{ source('raw', 'table') }})"
        )
    sql = body.strip().rstrip(";").strip()
    parameters, used_macros = _check_sql(
        path, sql, refs=[relations[ref] for ref in refs], sources=sources, macros=macros
    )
    return SqlModel(
        name=name,
        schema=schema,
        path=path,
        description=header.description,
        materialized="view" if materialized == "view" else "table",
        window_days=window_days,
        grain=grain,
        refs=tuple(refs),
        sources=tuple(sources),
        template=text,
        sql=sql,
        parameters=parameters,
        macros=used_macros,
    )


def _check_sql(
    path: Path,
    sql: str,
    *,
    refs: list[str],
    sources: list[SourceTable],
    macros: Mapping[str, SqlMacro],
) -> tuple[frozenset[str], tuple[str, ...]]:
    """Parse the rendered SQL with sqlglot; every table must be a CTE, a ref or a source; parameters known.

    Also returns the macros the model calls; a call must be ``staging.<macro>(…)`` and name a known macro.
    """
    try:
        statements = [statement for statement in sqlglot.parse(sql, read="duckdb") if statement is not None]
    except SqlglotError as error:
        raise SqlModelError(f"{path}: the SQL does not parse: {error}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise SqlModelError(f"{path}: a model is exactly one SELECT (or WITH … SELECT) statement")
    tree = statements[0]
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    declared = {relation.lower() for relation in refs} | {source.relation.lower() for source in sources}
    found: set[str] = set()
    for table in tree.find_all(exp.Table):
        if not table.name:
            continue  # a table function such as generate_series(...)
        if not table.db:
            if table.name.lower() not in cte_names:
                raise SqlModelError(
                    f"{path}: table {table.name!r} is neither a CTE nor written as {{{{ ref('...') }}}}"
                )
            continue
        relation = f"{table.db}.{table.name}".lower()
        if relation not in declared:
            raise SqlModelError(
                f"{path}: table {relation!r} is named directly; write {{{{ ref('{table.name}') }}}} "
                f"or {{{{ source('{table.db}', '{table.name}') }}}} so the dependency is known"
            )
        found.add(relation)
    missing = declared - found
    if missing:
        raise SqlModelError(f"{path}: sqlglot found no table for {', '.join(sorted(missing))} in the SQL")
    parameters = {str(placeholder.name) for placeholder in tree.find_all(exp.Placeholder)}
    if any(not _IDENTIFIER_RE.fullmatch(name) for name in parameters):
        raise SqlModelError(f"{path}: use named parameters ($users, $first_day …), not positional ones")
    unknown = parameters - set(PARAMETERS)
    if unknown:
        raise SqlModelError(
            f"{path}: unknown parameter(s) {', '.join('$' + p for p in sorted(unknown))} "
            f"(known: {', '.join('$' + p for p in PARAMETERS)})"
        )
    return frozenset(parameters), _macro_calls(path, tree, macros)


def _macro_calls(path: Path, tree: exp.Expr, macros: Mapping[str, SqlMacro]) -> tuple[str, ...]:
    """The macros ``tree`` calls, sorted; an unqualified call or an unknown ``staging.`` call is an error."""
    used: list[str] = []
    qualified: set[int] = set()
    for dot in tree.find_all(exp.Dot):
        call = dot.expression
        if not isinstance(call, exp.Func) or not isinstance(dot.this, exp.Identifier | exp.Column):
            continue
        if dot.this.name.lower() != MACRO_SCHEMA:
            continue
        name = call.name.lower() if isinstance(call, exp.Anonymous) else call.sql_name().lower()
        if name not in macros:
            raise SqlModelError(
                f"{path}: unknown macro {MACRO_SCHEMA}.{name} (macros: {', '.join(sorted(macros)) or 'none'})"
            )
        qualified.add(id(call))
        if name not in used:
            used.append(name)
    for call in tree.find_all(exp.Anonymous):
        if id(call) not in qualified and call.name.lower() in macros:
            raise SqlModelError(
                f"{path}: call the macro as {MACRO_SCHEMA}.{call.name.lower()}(...) "
                "so it resolves from every schema and snapshot"
            )
    return tuple(sorted(used))


def _check_view_dependencies(models: Mapping[str, SqlModel]) -> None:
    for model in models.values():
        if model.materialized != "view":
            continue
        for ref in model.refs:
            if models[ref].materialized != "view":
                raise SqlModelError(
                    f"{model.path}: a view cannot ref the table model {ref!r}; views are recreated before "
                    "tables are written, so they may read only sources and other views"
                )
        if model.parameters:
            raise SqlModelError(f"{model.path}: a view cannot use run parameters (it is not run per range)")


def _dependency_order(models: Mapping[str, SqlModel]) -> list[str]:
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name in sorted(models):
        sorter.add(name, *models[name].refs)
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as error:
        cycle: list[str] = list(error.args[1])
        files = " -> ".join(str(models[name].path) for name in cycle)
        raise SqlModelError(f"{models[cycle[0]].path}: dependency cycle: {files}") from None
