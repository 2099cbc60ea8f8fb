"""``polar-flow sql``: ad-hoc SQL on the current serving snapshot, read-only; a table, CSV, JSON or Parquet.

The snapshot is what the API reads (docs/sql.md lists every table and column); it is opened read-only, so a
statement that would write fails with DuckDB's own message and changes nothing, and a run in progress is
never disturbed. Without a statement it reads statements from the terminal, each ended by ``;``.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TextIO

import duckdb

from polar_pipeline.warehouse.snapshot import read_pointer

Format = Literal["table", "csv", "json", "parquet"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json", "parquet")
TABLE_MAX_ROWS = 1000
PROMPT, CONTINUATION = "sql> ", "...> "


class SqlError(RuntimeError):
    """What the person should read: nothing published yet, a bad statement, a missing output path."""


@contextmanager
def open_snapshot(snapshots_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection on the generation the pointer names."""
    info = read_pointer(snapshots_dir)
    if info is None:
        raise SqlError("nothing is published yet: run `polar-flow sync` (or `make demo`) first")
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        yield con
    finally:
        con.close()


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID | bytes):
        return str(value)
    return value


def run_statement(
    con: duckdb.DuckDBPyConnection,
    statement: str,
    out: TextIO,
    output_format: Format = "table",
    output: Path | None = None,
) -> int:
    """Run one statement, write its result to ``out`` (``output`` for Parquet); returns the row count."""
    try:
        if output_format == "parquet":
            if output is None:
                raise SqlError("--format parquet writes a file: give it with --output PATH")
            query = statement.strip().rstrip(";")
            target = output.as_posix().replace("'", "''")
            con.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet)")
            row = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()
            return int(row[0]) if row else 0
        result = con.execute(statement)
        columns = [column[0] for column in result.description or []]
        rows = result.fetchall()
    except duckdb.Error as exc:
        raise SqlError(str(exc).strip()) from None
    if output_format == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
    elif output_format == "json":
        records = [
            {name: _json_value(value) for name, value in zip(columns, row, strict=True)} for row in rows
        ]
        json.dump(records, out, ensure_ascii=False, indent=1)
        out.write("\n")
    else:
        _write_table(out, columns, rows)
    return len(rows)


def _write_table(out: TextIO, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """A plain aligned table (at most ``TABLE_MAX_ROWS`` rows), then the row count."""
    if not columns:
        out.write("OK\n")
        return
    shown = [["NULL" if value is None else str(value) for value in row] for row in rows[:TABLE_MAX_ROWS]]
    widths = [max([len(name), *(len(row[i]) for row in shown)]) for i, name in enumerate(columns)]
    out.write(
        "  ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True)).rstrip() + "\n"
    )
    out.write("  ".join("-" * width for width in widths) + "\n")
    for row in shown:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        )
    more = f" (first {TABLE_MAX_ROWS} shown)" if len(rows) > TABLE_MAX_ROWS else ""
    out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''}{more})\n")


def statements(lines: Iterator[str]) -> Iterator[str]:
    """Statements from lines of input, each ended by ``;`` (a last one may omit it)."""
    buffered: list[str] = []
    for line in lines:
        buffered.append(line)
        if line.rstrip().endswith(";"):
            yield "\n".join(buffered)
            buffered = []
    if "".join(buffered).strip():
        yield "\n".join(buffered)


def interactive(con: duckdb.DuckDBPyConnection, source: TextIO, out: TextIO, err: TextIO) -> int:
    """Read statements until end of input or ``.quit``; a failing statement is reported, the loop goes on."""
    prompting = source.isatty()

    def lines() -> Iterator[str]:
        first = True
        while True:
            if prompting:
                out.write(PROMPT if first else CONTINUATION)
                out.flush()
            line = source.readline()
            if not line or line.strip() in (".quit", ".exit"):
                return
            first = line.rstrip().endswith(";")
            yield line.rstrip("\n")

    failures = 0
    for statement in statements(lines()):
        try:
            run_statement(con, statement, out)
        except SqlError as exc:
            failures += 1
            err.write(f"error: {exc}\n")
    return 1 if failures else 0


def main(snapshots_dir: Path, statement: str | None, output_format: Format, output: Path | None) -> int:
    """What ``polar-flow sql`` does: one statement, or an interactive session without one."""
    try:
        with open_snapshot(snapshots_dir) as con:
            if statement is None:
                return interactive(con, sys.stdin, sys.stdout, sys.stderr)
            count = run_statement(con, statement, sys.stdout, output_format, output)
            if output_format == "parquet":
                print(f"{count} rows written to {output}", file=sys.stderr)
            return 0
    except SqlError as exc:
        print(f"polar-flow sql: {exc}", file=sys.stderr)
        return 1
