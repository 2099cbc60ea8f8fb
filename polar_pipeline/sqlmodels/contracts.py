"""What a relation promises: its columns, each described once, and the data tests that must hold on it.

Each model has a YAML file beside its SQL (``marts/baselines.yml`` next to ``marts/baselines.sql``), and the
raw tables are described in ``sources.yml``; docs/sql.md is generated from them. A test is declared on a
column (``not_null``, ``unique``, ``accepted_range``, ``accepted_values``) or on the relation (``unique`` over
the grain, ``expression_is_true``, ``no_day_gaps``). ``error`` tests guard the table itself (a duplicate
grain, a broken invariant) and block downstream assets when they fail; ``warn`` tests report unusual values
(and gaps) without halting anything, since one person's odd night must not stop everyone else's partitions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

Severity = Literal["error", "warn"]
TestKind = Literal[
    "not_null", "unique", "accepted_range", "accepted_values", "expression_is_true", "no_day_gaps"
]

DEFAULT_SEVERITY: Mapping[str, Severity] = {
    "not_null": "error",
    "unique": "error",
    "expression_is_true": "error",
    "accepted_range": "warn",
    "accepted_values": "warn",
    "no_day_gaps": "warn",
}
COLUMN_TESTS = ("not_null", "unique", "accepted_range", "accepted_values")
RELATION_TESTS = ("unique", "expression_is_true", "no_day_gaps")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class ContractError(ValueError):
    """A YAML contract is malformed; the message starts with the file's path."""


@dataclass(frozen=True)
class DataTest:
    """One declared test, ready to be turned into SQL over a relation (or a slice of it)."""

    name: str
    kind: TestKind
    columns: tuple[str, ...]
    severity: Severity
    description: str
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[Any, ...] = ()
    expression: str = ""

    @property
    def blocking(self) -> bool:
        return self.severity == "error"

    def failing_rows_sql(self, relation: str, where: str = "TRUE") -> str:
        """A SELECT of the rows that break the test (for ``unique``: the duplicated keys and their count).

        A NULL value passes every test but ``not_null``; ``accepted_values`` binds ``$accepted_values``.
        """
        column = self.columns[0] if self.columns else ""
        if self.kind == "unique":
            keys = ", ".join(self.columns)
            return (
                f"SELECT {keys}, count(*) AS copies FROM {relation} WHERE {where} "
                f"GROUP BY {keys} HAVING count(*) > 1"
            )
        if self.kind == "no_day_gaps":
            # The (user, day) pairs of the slice, between the user's first and last day anywhere in the
            # relation, that have no row: a gap opens inside someone's history. ``where`` names only
            # user_id and day, so it filters the candidate pairs as it would filter rows.
            return f"""
                WITH present AS (SELECT DISTINCT user_id, day FROM {relation}),
                bounds AS (SELECT user_id, min(day) AS low, max(day) AS high FROM present GROUP BY 1),
                candidates AS (
                    SELECT user_id, CAST(unnest(generate_series(low, high, INTERVAL 1 DAY)) AS DATE) AS day
                    FROM bounds
                )
                SELECT user_id, day FROM candidates AS c
                WHERE ({where}) AND NOT EXISTS (
                    SELECT 1 FROM present AS p WHERE p.user_id = c.user_id AND p.day = c.day
                )
            """
        if self.kind == "not_null":
            condition = f"{column} IS NULL"
        elif self.kind == "accepted_range":
            bounds = [f"{column} >= {self.minimum!r}"] if self.minimum is not None else []
            bounds += [f"{column} <= {self.maximum!r}"] if self.maximum is not None else []
            condition = f"NOT ({' AND '.join(bounds)})"
        elif self.kind == "accepted_values":
            condition = f"NOT list_contains($accepted_values, {column})"
        else:
            condition = f"NOT ({self.expression})"
        return f"SELECT * FROM {relation} WHERE ({where}) AND {condition}"

    @property
    def params(self) -> dict[str, Any]:
        return {"accepted_values": list(self.values)} if self.kind == "accepted_values" else {}


@dataclass(frozen=True)
class ColumnDoc:
    name: str
    description: str


@dataclass(frozen=True)
class Contract:
    """A relation's documented columns (in its column order) and its declared tests."""

    path: Path
    columns: tuple[ColumnDoc, ...]
    tests: tuple[DataTest, ...]
    description: str = ""

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def load_contract(path: Path) -> Contract:
    """Read one model's YAML (``columns:`` and optional ``tests:``)."""
    document = _read_yaml(path)
    _only_keys(path, document, {"columns", "tests"}, "a model's YAML")
    return _contract(path, document)


def load_source_contracts(path: Path) -> dict[str, Contract]:
    """Read ``sources.yml``: a list of ``schema``, ``table``, ``description``, ``columns``, ``tests``."""
    if not path.exists():
        return {}
    document = _read_yaml(path)
    _only_keys(path, document, {"sources"}, "sources.yml")
    contracts: dict[str, Contract] = {}
    for entry in _list(path, document.get("sources"), "sources"):
        if not isinstance(entry, dict):
            raise ContractError(f"{path}: each source is a mapping with schema, table, description, columns")
        _only_keys(path, entry, {"schema", "table", "description", "columns", "tests"}, "a source")
        relation = f"{entry.get('schema')}.{entry.get('table')}"
        if relation in contracts:
            raise ContractError(f"{path}: source {relation} is described twice")
        contracts[relation] = _contract(path, entry, description=str(entry.get("description") or ""))
        if not contracts[relation].description:
            raise ContractError(f"{path}: source {relation} needs a description")
    return contracts


def _contract(path: Path, document: Mapping[str, Any], description: str = "") -> Contract:
    columns: list[ColumnDoc] = []
    tests: list[DataTest] = []
    for entry in _list(path, document.get("columns"), "columns"):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ContractError(f"{path}: each column is a mapping with a name and a description")
        _only_keys(path, entry, {"name", "description", "tests"}, f"column {entry['name']!r}")
        name, text = entry["name"], entry.get("description")
        if not isinstance(text, str) or not text.strip():
            raise ContractError(f"{path}: column {name!r} needs a description")
        if name in {column.name for column in columns}:
            raise ContractError(f"{path}: column {name!r} is listed twice")
        columns.append(ColumnDoc(name, " ".join(text.split())))
        for spec in _list(path, entry.get("tests", []), f"tests of column {name!r}"):
            tests.append(_test(path, spec, COLUMN_TESTS, column=name))
    if not columns:
        raise ContractError(f"{path}: list the relation's columns under `columns:`")
    for spec in _list(path, document.get("tests", []), "tests"):
        tests.append(_test(path, spec, RELATION_TESTS, column=None))
    known = {column.name for column in columns}
    for test in tests:
        unknown = [column for column in test.columns if column not in known]
        if unknown:
            raise ContractError(f"{path}: test {test.name} names unknown column(s) {', '.join(unknown)}")
    names = [test.name for test in tests]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ContractError(f"{path}: test name(s) {', '.join(duplicated)} used twice")
    return Contract(path=path, columns=tuple(columns), tests=tuple(tests), description=description)


def _test(path: Path, spec: object, allowed: Sequence[str], column: str | None) -> DataTest:
    """One test from ``not_null`` (a bare name) or ``{kind: {arguments}}``."""
    where = f"column {column!r}" if column else "the relation"
    arguments: object
    if isinstance(spec, str):
        kind, arguments = spec, {}
    elif isinstance(spec, dict) and len(spec) == 1:
        kind, arguments = next(iter(spec.items()))
    else:
        raise ContractError(f"{path}: a test of {where} is a name or a one-key mapping, not {spec!r}")
    if kind not in allowed:
        raise ContractError(f"{path}: unknown test {kind!r} on {where} (allowed: {', '.join(allowed)})")
    if kind == "unique" and column is None:
        if not isinstance(arguments, list) or not all(isinstance(c, str) for c in arguments) or not arguments:
            raise ContractError(f"{path}: a relation's `unique` test lists its key columns")
        keys = tuple(arguments)
        return DataTest(
            name="unique_" + "_".join(keys),
            kind="unique",
            columns=keys,
            severity="error",
            description=f"one row per {', '.join(keys)}",
        )
    if arguments in (None, {}) and kind in ("not_null", "unique", "no_day_gaps"):
        arguments = {}
    if not isinstance(arguments, dict):
        raise ContractError(f"{path}: the arguments of {kind} on {where} are a mapping")
    severity = arguments.get("severity", DEFAULT_SEVERITY[kind])
    if severity not in ("error", "warn"):
        raise ContractError(f"{path}: severity of {kind} on {where} is 'error' or 'warn', not {severity!r}")
    if kind == "not_null":
        _only_keys(path, arguments, {"severity"}, f"not_null on {where}")
        return DataTest(f"{column}_not_null", "not_null", (str(column),), severity, f"{column} is never NULL")
    if kind == "unique":
        _only_keys(path, arguments, {"severity"}, f"unique on {where}")
        return DataTest(f"{column}_unique", "unique", (str(column),), severity, f"{column} is unique")
    if kind == "accepted_range":
        _only_keys(path, arguments, {"min", "max", "severity"}, f"accepted_range on {where}")
        low, high = arguments.get("min"), arguments.get("max")
        for bound in (low, high):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
                raise ContractError(f"{path}: accepted_range bounds on {where} are numbers")
        if low is None and high is None:
            raise ContractError(f"{path}: accepted_range on {where} needs min, max or both")
        if low is not None and high is not None:
            shown = f"within {low}..{high}"
        else:
            shown = f">= {low}" if low is not None else f"<= {high}"
        return DataTest(
            f"{column}_accepted_range",
            "accepted_range",
            (str(column),),
            severity,
            f"{column} {shown} (or NULL)",
            minimum=None if low is None else float(low),
            maximum=None if high is None else float(high),
        )
    if kind == "accepted_values":
        _only_keys(path, arguments, {"values", "severity"}, f"accepted_values on {where}")
        values = arguments.get("values")
        if not isinstance(values, list) or not values:
            raise ContractError(f"{path}: accepted_values on {where} lists its values")
        return DataTest(
            f"{column}_accepted_values",
            "accepted_values",
            (str(column),),
            severity,
            f"{column} in {', '.join(map(str, values))} (or NULL)",
            values=tuple(values),
        )
    if kind == "no_day_gaps":
        _only_keys(path, arguments, {"severity"}, f"no_day_gaps on {where}")
        return DataTest(
            "no_day_gaps",
            "no_day_gaps",
            ("user_id", "day"),
            severity,
            "no day without a row between a user's first and last day (a gap in the data)",
        )
    _only_keys(path, arguments, {"name", "expression", "description", "severity"}, f"{kind} on {where}")
    name, expression, text = arguments.get("name"), arguments.get("expression"), arguments.get("description")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ContractError(f"{path}: expression_is_true needs a snake_case name")
    if not isinstance(expression, str) or not expression.strip():
        raise ContractError(f"{path}: expression_is_true {name} needs an expression")
    if not isinstance(text, str) or not text.strip():
        raise ContractError(f"{path}: expression_is_true {name} needs a description")
    return DataTest(name, "expression_is_true", (), severity, " ".join(text.split()), expression=expression)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ContractError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ContractError(f"{path}: expected a mapping at the top")
    return document


def _list(path: Path, value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ContractError(f"{path}: {what} is a list")
    return value


def _only_keys(path: Path, mapping: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ContractError(
            f"{path}: unknown key(s) {', '.join(unknown)} in {what} (allowed: {', '.join(sorted(allowed))})"
        )
