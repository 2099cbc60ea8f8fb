"""The table documentation the MCP resources serve, held against docs/sql.md, the contracts and the snapshot.

docs/sql.md is generated from the same contracts, so its relations, columns, types and descriptions must be
these; the served snapshot (built by the real pipeline) says which relations exist and with which types.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from polar_api.read.table_docs import (
    TableDoc,
    public_tables,
    render_index_markdown,
    render_table_markdown,
    table_doc,
)
from polar_pipeline.sqlmodels.loader import load_models
from tests.support.served import Served

DOCS_SQL = Path(__file__).resolve().parents[2] / "docs" / "sql.md"


def docs_sql_sections() -> dict[str, tuple[str, list[list[str]]]]:
    """docs/sql.md's relations: relation -> (the line under its heading, its column rows split in cells)."""
    sections: dict[str, tuple[str, list[list[str]]]] = {}
    relation = None
    for line in DOCS_SQL.read_text().splitlines():
        heading = re.fullmatch(r"### `([a-z_]+\.[a-z_]+)`", line)
        if heading:
            relation = heading.group(1)
            sections[relation] = ("", [])
        elif line.startswith("## "):
            relation = None
        elif relation and line.startswith("*") and not sections[relation][0]:
            sections[relation] = (line, sections[relation][1])
        elif relation and line.startswith("| `"):
            cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            sections[relation][1].append(cells)
    return sections


def snapshot_columns(served: Served) -> dict[str, list[tuple[str, str]]]:
    """relation -> [(column, DuckDB type)] as the served snapshot has them."""
    rows = served.snapshot_query(
        "SELECT table_schema || '.' || table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema IN ('marts', 'analytics', 'samples') "
        "OR table_schema || '.' || table_name IN ('raw.quarantine', 'control.user_time_zones') "
        "ORDER BY table_schema, table_name, ordinal_position"
    )
    columns: dict[str, list[tuple[str, str]]] = {}
    for relation, name, data_type in rows:
        columns.setdefault(str(relation), []).append((str(name), str(data_type)))
    return columns


@pytest.fixture(scope="module")
def docs() -> dict[str, TableDoc]:
    return {doc.relation: doc for doc in public_tables()}


def test_exactly_the_relations_of_the_snapshot_are_documented(
    served: Served, docs: dict[str, TableDoc]
) -> None:
    served_relations = set(snapshot_columns(served))
    assert len(served_relations) >= 20
    assert set(docs) == served_relations


def test_columns_and_types_are_what_the_snapshot_has(served: Served, docs: dict[str, TableDoc]) -> None:
    for relation, columns in snapshot_columns(served).items():
        assert [(c.name, c.type) for c in docs[relation].columns] == columns, relation


def test_every_relation_of_docs_sql_in_the_snapshot_appears_as_docs_sql_shows_it(
    served: Served, docs: dict[str, TableDoc]
) -> None:
    sections = docs_sql_sections()
    served_relations = set(snapshot_columns(served))
    shown = {relation: section for relation, section in sections.items() if relation in served_relations}
    assert {"marts.daily_metrics", "raw.quarantine", "samples.sleep_series"} <= set(shown)
    for relation, (kind_line, rows) in shown.items():
        doc = docs[relation]
        assert [cells[0].strip("`") for cells in rows] == doc.column_names, relation
        if relation.startswith("samples."):
            continue  # docs/sql.md spells these types as the code does (TIMESTAMPTZ), nothing more
        assert [cells[1] for cells in rows] == [c.type for c in doc.columns], relation
        assert kind_line.endswith(f"* {doc.description}"), relation
        assert [cells[2] for cells in rows] == [c.description for c in doc.columns], relation


def test_descriptions_and_columns_are_the_contracts(docs: dict[str, TableDoc]) -> None:
    graph = load_models()
    contracts = {model.relation: (model.description, model.contract) for model in graph.relations}
    contracts |= {relation: (contract.description, contract) for relation, contract in graph.sources.items()}
    from_contracts = [relation for relation in docs if relation in contracts]
    assert {relation for relation in docs if relation.startswith("marts.")} <= set(from_contracts)
    assert "raw.quarantine" in from_contracts
    for relation in from_contracts:
        description, contract = contracts[relation]
        assert contract is not None
        doc = docs[relation]
        assert doc.description == description
        assert [(c.name, c.description) for c in doc.columns] == [
            (c.name, c.description) for c in contract.columns
        ]
        assert len(doc.tests) == len(contract.tests) and all(doc.tests)


def test_the_other_relations_say_what_a_row_is(docs: dict[str, TableDoc]) -> None:
    for relation, doc in docs.items():
        assert doc.description and doc.source, relation
        assert "user_id" in doc.column_names, relation
        assert (Path(__file__).resolve().parents[2] / doc.source).exists(), doc.source
        if relation.startswith("analytics."):
            assert " row" in doc.description, relation
        if relation.startswith("analytics.") and relation != "analytics.data_health":
            assert "docs/methods.md" in doc.description, relation


def test_markdown_mentions_every_column(docs: dict[str, TableDoc]) -> None:
    for doc in docs.values():
        text = render_table_markdown(doc)
        assert text.startswith(f"# `{doc.relation}`\n")
        for column in doc.columns:
            assert re.search(rf"^\| `{column.name}` \| {re.escape(column.type)} \|", text, re.M), column
            assert column.description.replace("|", "\\|") in text
        for test in doc.tests:
            assert test in text
    index = render_index_markdown(docs.values(), link=lambda doc: f"polar://tables/{doc.relation}")
    for relation in docs:
        assert f"[`{relation}`](polar://tables/{relation})" in index
    assert "## marts" in index and "## analytics" in index


def test_built_once_per_process_and_found_by_name(docs: dict[str, TableDoc]) -> None:
    again = public_tables()
    assert all(doc is docs[doc.relation] for doc in again)
    assert table_doc(" MARTS.Daily_Metrics ") is docs["marts.daily_metrics"]
    assert table_doc("raw.sleep") is None
