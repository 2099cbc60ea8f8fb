"""Read the ``dbt_like_sql/`` folder into a validated graph of SQL models, without Jinja.

One ``.sql`` file is one model; its folder is its schema (``staging/sleep.sql`` → ``staging.sleep``). A file
starts with ``--`` comment lines: ``-- key: value`` lines with a known key configure it (``materialized``,
``window_days``, ``grain``; a near miss such as ``window_day`` is an error), every other line is its
description. Beside it, ``<name>.yml`` describes its columns and declares its data tests (``contracts``);
``sources.yml`` does the same for the raw tables. The body may use two template forms, rendered by regex:

* ``{{ ref('name') }}`` → the relation of another model (``marts.daily_metrics``), or, for an
  ``ephemeral`` model, its SELECT inlined as a parenthesised subquery (written once, read by several);
* ``{{ source('raw', 'sleep') }}`` → a raw table written by the ingest assets (``raw.sleep``);

and the run parameters ``$users``, ``$first_day``, ``$last_day`` and ``$read_from``, which stay in the SQL and
are bound as DuckDB prepared-statement parameters. A ref or source may also be passed to a table macro as a
string, ``staging.typed_slice('{{ ref("sleep") }}', …)``; it counts as a dependency like any other.
Everything is checked when the graph loads — unknown refs, cycles, tables named without
``ref()``/``source()``, unknown parameters, SQL that does not parse, a malformed YAML — and every
error names the file, so a broken model fails definitions loading instead of a run.

The ``macros/`` folder is not a schema: each file there is one DuckDB macro, ``CREATE OR REPLACE MACRO
<file stem>(args) AS <expression>`` (scalar) or ``… AS TABLE SELECT …`` (table), created in the ``staging``
schema before the views (in the same transaction). Models call them schema-qualified,
``staging.iso_duration_seconds(text)``, so logic written once serves every view; a macro is a catalog entry,
so ``COPY FROM DATABASE`` carries it into the serving snapshot together with the views that call it.
"""

from __future__ import annotations

import difflib
import graphlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from polar_pipeline.sqlmodels.contracts import ContractError, load_contract, load_source_contracts
from polar_pipeline.sqlmodels.graph import (
    MACRO_SCHEMA,
    PARAMETERS,
    SOURCE_SCHEMA,
    MacroKind,
    Materialization,
    ModelGraph,
    SourceTable,
    SqlMacro,
    SqlModel,
    SqlModelError,
)
from polar_pipeline.warehouse.schema import RAW_TABLES

DEFAULT_SQL_DIR = Path(__file__).resolve().parents[2] / "dbt_like_sql"
"""The repository's ``dbt_like_sql/`` folder (the package runs from a source checkout)."""

HEADER_KEYS: tuple[str, ...] = ("materialized", "window_days", "grain", "alias")
MATERIALIZATIONS: tuple[Materialization, ...] = ("view", "table", "ephemeral")
MACRO_FOLDER = "macros"
"""The folder of ``dbt_like_sql/`` that holds macros, one per file, instead of models."""
SOURCES_FILE = "sources.yml"

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


@dataclass(frozen=True)
class _Header:
    description: str
    settings: dict[str, str]


def load_models(sql_dir: Path = DEFAULT_SQL_DIR) -> ModelGraph:
    """Parse every ``**/*.sql`` under ``sql_dir``, render refs and sources, and validate the whole graph.

    Files under ``macros/`` are macros (see ``load_macros``), every other file is a model, with its YAML
    contract beside it. ``sources.yml`` describes the raw tables.
    """
    sql_dir = Path(sql_dir)
    if not sql_dir.is_dir():
        raise SqlModelError(f"{sql_dir}: SQL model folder not found")
    macros = load_macros(sql_dir)
    drafts: dict[str, _Draft] = {}
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
            raise SqlModelError(f"{path}: model name {name!r} is already used by {drafts[name].path}")
        text = path.read_text(encoding="utf-8")
        drafts[name] = _Draft(path, schema, _parse_header(path, text), text)
    if not drafts:
        raise SqlModelError(f"{sql_dir}: no .sql model files found")

    order = _dependency_order(drafts)
    models: dict[str, SqlModel] = {}
    for name in order:
        models[name] = _with_contract(_build_model(name, drafts[name], models, macros))
    _check_unique_relations(models)
    _check_view_dependencies(models)
    try:
        sources = load_source_contracts(sql_dir / SOURCES_FILE)
    except ContractError as error:
        raise SqlModelError(str(error)) from None
    return ModelGraph(sql_dir=sql_dir, models=models, macros=macros, sources=sources)


@dataclass(frozen=True)
class _Draft:
    """A model file read but not yet rendered."""

    path: Path
    schema: str
    header: _Header
    text: str

    def refs(self, known: Mapping[str, _Draft], name: str) -> list[str]:
        """The model names ``{{ ref() }}``'d in the file, in order; unknown names and self-refs are errors."""
        found: list[str] = []
        for match in _REF_RE.finditer(self.text):
            ref = match["name"]
            if ref not in known:
                raise SqlModelError(f"{self.path}: unknown ref {ref!r} (models: {', '.join(sorted(known))})")
            if ref == name:
                raise SqlModelError(f"{self.path}: the model refs itself")
            if ref not in found:
                found.append(ref)
        return found


def _with_contract(model: SqlModel) -> SqlModel:
    """Attach ``<name>.yml`` when it exists (``docs.undocumented`` reports a public model without one)."""
    path = model.path.with_suffix(".yml")
    if not path.exists():
        return model
    try:
        return replace(model, contract=load_contract(path))
    except ContractError as error:
        raise SqlModelError(str(error)) from None


def load_macros(sql_dir: Path = DEFAULT_SQL_DIR) -> dict[str, SqlMacro]:
    """Read ``sql_dir/macros/*.sql``: each file one macro named like the file, sorted by name.

    A file must start with a description comment and hold exactly one ``CREATE OR REPLACE MACRO <stem>(…) AS
    <expression>`` (scalar) or ``… AS TABLE <select>`` (table), with no template syntax and no call to
    another macro of the folder: DuckDB binds a macro's body when it is created, so a macro calling another
    would depend on the creation order. The name is written unqualified (or as ``staging.<stem>``); it is
    rendered into ``MACRO_SCHEMA``.
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
        called = sorted(_function_names(_parse_macro(macro.path, macro.sql)) & set(macros) - {macro.name})
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
    body = _strip_header(text).strip().rstrip(";").strip()
    if _ANY_TEMPLATE_RE.search(body):
        raise SqlModelError(f"{path}: a macro cannot use template expressions ({{{{ ... }}}})")
    head = _MACRO_HEAD_RE.match(body)
    if head is None:
        raise SqlModelError(
            f"{path}: a macro file holds exactly one `CREATE OR REPLACE MACRO {name}(args) AS expression`"
            " (or `AS TABLE select`)"
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
    kind: MacroKind = "table" if isinstance(created.expression, exp.Query) else "scalar"
    return SqlMacro(name=name, path=path, description=header.description, template=text, sql=sql, kind=kind)


def _parse_macro(path: Path, sql: str) -> exp.Create:
    """The macro's one statement as sqlglot sees it; anything but one CREATE MACRO is an error."""
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
            f"`CREATE OR REPLACE MACRO {path.stem}(args) AS expression` (or `AS TABLE select`)"
        )
    return statements[0]


def _function_names(created: exp.Create) -> set[str]:
    """Lower-case names of the functions a macro's body calls anywhere (qualified or not)."""
    return {node.name.lower() for node in created.expression.find_all(exp.Anonymous)}


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
    name: str, draft: _Draft, built: Mapping[str, SqlModel], macros: Mapping[str, SqlMacro]
) -> SqlModel:
    """Render and check one model; ``built`` holds every model it refs (callers go in dependency order)."""
    path, header = draft.path, draft.header
    materialized = header.settings.get("materialized", "table")
    if materialized not in MATERIALIZATIONS:
        raise SqlModelError(
            f"{path}: materialized must be one of {', '.join(MATERIALIZATIONS)}, not {materialized!r}"
        )
    window_text = header.settings.get("window_days", "0")
    if not window_text.isdigit():
        raise SqlModelError(f"{path}: window_days must be a whole number of days >= 0, not {window_text!r}")
    window_days = int(window_text)
    if materialized != "table" and window_days:
        raise SqlModelError(
            f"{path}: window_days applies to table models; a {materialized} reads what it selects"
        )
    grain = tuple(
        part.strip() for part in header.settings.get("grain", "user_id, day").split(",") if part.strip()
    )
    alias = header.settings.get("alias")
    if alias is not None and not _IDENTIFIER_RE.fullmatch(alias):
        raise SqlModelError(f"{path}: alias {alias!r} is not a SQL identifier")
    if alias is not None and materialized == "ephemeral":
        raise SqlModelError(f"{path}: an ephemeral model has no relation to alias")
    if materialized == "table" and grain[:2] != ("user_id", "day"):
        raise SqlModelError(
            f"{path}: a table model is partitioned by user and day; its grain starts user_id, day"
        )

    refs: list[str] = []
    sources: list[SourceTable] = []

    def render_ref(match: re.Match[str]) -> str:
        upstream = built[match["name"]]
        if upstream.name not in refs:
            refs.append(upstream.name)
        if upstream.materialized != "ephemeral":
            return upstream.relation
        if match.string[max(0, match.start() - 1) : match.start()] in ("'", '"'):
            raise SqlModelError(
                f"{path}: the ephemeral model {upstream.name!r} has no relation to pass by name"
            )
        return f"(\n{upstream.sql}\n)"

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

    body = _REF_RE.sub(render_ref, draft.text)
    body = _SOURCE_RE.sub(render_source, body)
    leftover = _ANY_TEMPLATE_RE.search(body)
    if leftover is not None:
        raise SqlModelError(
            f"{path}: unsupported template expression {leftover.group(0)!r} "
            "(only {{ ref('model') }} and {{ source('raw', 'table') }})"
        )
    sql = body.strip().rstrip(";").strip()
    declared: set[str] = {source.relation.lower() for source in sources}
    for ref in refs:
        declared |= _relations_read(built, built[ref])
    parameters, used_macros = _check_sql(path, sql, declared=declared, macros=macros)
    return SqlModel(
        name=name,
        schema=draft.schema,
        path=path,
        description=header.description,
        materialized=_materialization(materialized),
        window_days=window_days,
        grain=grain,
        refs=tuple(refs),
        sources=tuple(sources),
        template=draft.text,
        sql=sql,
        parameters=parameters,
        macros=tuple(sorted(set(used_macros) | _inlined_macros(built, refs))),
        alias=alias,
    )


def _check_unique_relations(models: Mapping[str, SqlModel]) -> None:
    """Two models may not write one relation (an alias can name another model's table or view)."""
    owners: dict[str, SqlModel] = {}
    for model in models.values():
        if model.materialized == "ephemeral":
            continue
        other = owners.setdefault(model.relation, model)
        if other is not model:
            raise SqlModelError(
                f"{model.path}: relation {model.relation!r} is already written by {other.path}"
            )


def _materialization(text: str) -> Materialization:
    return "view" if text == "view" else "ephemeral" if text == "ephemeral" else "table"


def _relations_read(built: Mapping[str, SqlModel], model: SqlModel) -> set[str]:
    """The relation a ref to ``model`` puts in the SQL: its own, or, inlined, everything it reads."""
    if model.materialized != "ephemeral":
        return {model.relation.lower()}
    found = {source.relation.lower() for source in model.sources}
    for ref in model.refs:
        found |= _relations_read(built, built[ref])
    return found


def _inlined_macros(built: Mapping[str, SqlModel], refs: list[str]) -> set[str]:
    """Macros called by the ephemeral models inlined through ``refs`` (they count for the code version)."""
    return {macro for ref in refs if built[ref].materialized == "ephemeral" for macro in built[ref].macros}


def _check_sql(
    path: Path, sql: str, *, declared: set[str], macros: Mapping[str, SqlMacro]
) -> tuple[frozenset[str], tuple[str, ...]]:
    """Parse the rendered SQL with sqlglot; every table must be a CTE, a ref or a source; parameters known.

    ``declared`` holds the relations the template's refs and sources put in the SQL (lower case). Also
    returns the macros the model calls; a call must be ``staging.<macro>(…)`` and name a known macro.
    """
    try:
        statements = [statement for statement in sqlglot.parse(sql, read="duckdb") if statement is not None]
    except SqlglotError as error:
        raise SqlModelError(f"{path}: the SQL does not parse: {error}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise SqlModelError(f"{path}: a model is exactly one SELECT (or WITH … SELECT) statement")
    tree = statements[0]
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found: set[str] = set()
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func):
            found |= _relations_passed(table) & declared  # a table function or a table macro
            continue
        if not table.name:
            continue
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


def _relations_passed(table: exp.Table) -> set[str]:
    """String arguments of a table function call, lower case (a relation handed to a table macro)."""
    return {
        str(argument.this).lower()
        for argument in table.this.expressions
        if isinstance(argument, exp.Literal) and argument.is_string
    }


def _macro_calls(path: Path, tree: exp.Expr, macros: Mapping[str, SqlMacro]) -> tuple[str, ...]:
    """The macros ``tree`` calls, sorted; an unqualified call, an unknown ``staging.`` call, or a macro
    called as the wrong kind (a table macro outside FROM, a scalar one in FROM) is an error."""
    used: list[str] = []
    qualified: set[int] = set()
    calls: list[tuple[exp.Expr, str, MacroKind]] = []
    for dot in tree.find_all(exp.Dot):
        call = dot.expression
        if (
            isinstance(call, exp.Func)
            and isinstance(dot.this, exp.Identifier | exp.Column)
            and dot.this.name.lower() == MACRO_SCHEMA
        ):
            name = call.name.lower() if isinstance(call, exp.Anonymous) else call.sql_name().lower()
            calls.append((call, name, "scalar"))
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func) and table.db and table.db.lower() == MACRO_SCHEMA:
            calls.append((table.this, table.this.name.lower(), "table"))
    for call, name, kind in calls:
        if name not in macros:
            raise SqlModelError(
                f"{path}: unknown macro {MACRO_SCHEMA}.{name} (macros: {', '.join(sorted(macros)) or 'none'})"
            )
        if macros[name].kind != kind:
            where = "in FROM" if macros[name].kind == "table" else "as an expression"
            raise SqlModelError(
                f"{path}: {MACRO_SCHEMA}.{name} is a {macros[name].kind} macro; call it {where}"
            )
        qualified.add(id(call))
        if name not in used:
            used.append(name)
    for anonymous in tree.find_all(exp.Anonymous):
        if id(anonymous) not in qualified and anonymous.name.lower() in macros:
            raise SqlModelError(
                f"{path}: call the macro as {MACRO_SCHEMA}.{anonymous.name.lower()}(...) "
                "so it resolves from every schema and snapshot"
            )
    return tuple(sorted(used))


def _check_view_dependencies(models: Mapping[str, SqlModel]) -> None:
    for model in models.values():
        if model.materialized != "view":
            continue
        for ref in model.refs:
            upstream = models[ref]
            reads_table = upstream.materialized == "table" or (
                upstream.materialized == "ephemeral"
                and any(models[name].materialized == "table" for name in _flatten_refs(models, upstream))
            )
            if reads_table:
                raise SqlModelError(
                    f"{model.path}: a view cannot ref the table model {ref!r}; views are recreated before "
                    "tables are written, so they may read only sources and other views"
                )
        if model.parameters:
            raise SqlModelError(f"{model.path}: a view cannot use run parameters (it is not run per range)")


def _flatten_refs(models: Mapping[str, SqlModel], model: SqlModel) -> list[str]:
    names: list[str] = []
    for ref in model.refs:
        names.append(ref)
        if models[ref].materialized == "ephemeral":
            names += _flatten_refs(models, models[ref])
    return names


def _dependency_order(drafts: Mapping[str, _Draft]) -> list[str]:
    """Model names with every model after the models it refs; a cycle is an error listing its files."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name in sorted(drafts):
        sorter.add(name, *drafts[name].refs(drafts, name))
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as error:
        cycle: list[str] = list(error.args[1])
        files = " -> ".join(str(drafts[name].path) for name in cycle)
        raise SqlModelError(f"{drafts[cycle[0]].path}: dependency cycle: {files}") from None
