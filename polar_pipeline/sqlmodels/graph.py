"""The parsed ``dbt_like_sql/`` folder: models, macros and raw sources, in dependency order.

Plain data: the loader builds it, the runner executes it, the Dagster factory and the docs generator read it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from polar_pipeline.sqlmodels.contracts import Contract

Materialization = Literal["view", "table", "ephemeral"]
MacroKind = Literal["scalar", "table"]

PARAMETERS: tuple[str, ...] = ("users", "first_day", "last_day", "read_from")
"""Named parameters a model may use: the run's users, its inclusive day range, and first_day - window_days."""
SOURCE_SCHEMA = "raw"
MACRO_SCHEMA = "staging"
"""Where the macros are created: a schema the warehouse and every serving snapshot have (the views' own)."""


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
    """One parsed model file: identity, header settings, dependencies, SQL before and after rendering.

    ``refs`` are the models named in the file; an ephemeral model is inlined where it is ref'd, so the
    relations a model really reads are ``ModelGraph.upstream(model)``.
    """

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
    contract: Contract | None = None
    alias: str | None = None
    """The table or view name when it differs from the model name (``-- alias:``); names are unique across
    schemas, so ``marts/exercise_sessions.sql`` with ``-- alias: exercises`` is ``marts.exercises``."""

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.alias or self.name}"


@dataclass(frozen=True)
class SqlMacro:
    """One macro file: ``CREATE OR REPLACE MACRO <name>(…)``, rendered into ``MACRO_SCHEMA``.

    A scalar macro is an expression; a table macro (``AS TABLE SELECT …``) is called in FROM and may take a
    relation as a string (``staging.typed_slice('{{ ref("sleep") }}', …)``), read with ``query_table``.
    """

    name: str
    path: Path
    description: str
    template: str
    sql: str
    kind: MacroKind = "scalar"

    @property
    def relation(self) -> str:
        return f"{MACRO_SCHEMA}.{self.name}"


@dataclass(frozen=True)
class ModelGraph:
    """All models keyed by name in dependency order (every model after the models it refs); the macros."""

    sql_dir: Path
    models: Mapping[str, SqlModel]
    macros: Mapping[str, SqlMacro] = field(default_factory=dict)
    sources: Mapping[str, Contract] = field(default_factory=dict)
    """Contracts of the raw tables (``sources.yml``), keyed by relation (``raw.sleep``)."""

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
    def relations(self) -> list[SqlModel]:
        """The models that exist in the database (views and tables; ephemerals are inlined)."""
        return [model for model in self if model.materialized != "ephemeral"]

    @property
    def schemas(self) -> list[str]:
        return sorted({model.schema for model in self.relations})

    def upstream(self, model: SqlModel) -> list[SqlModel]:
        """The views and tables ``model`` reads, ephemeral refs replaced by what they read, in order."""
        found: dict[str, SqlModel] = {}
        for ref in model.refs:
            upstream = self[ref]
            for reached in self.upstream(upstream) if upstream.materialized == "ephemeral" else [upstream]:
                found.setdefault(reached.name, reached)
        return list(found.values())

    def sources_of(self, model: SqlModel) -> list[SourceTable]:
        """The raw tables ``model`` names, its own and those of the ephemerals it inlines."""
        found = list(model.sources)
        for ref in model.refs:
            if self[ref].materialized == "ephemeral":
                found += [source for source in self.sources_of(self[ref]) if source not in found]
        return found
