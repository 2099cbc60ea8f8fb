"""The DuckDB rules in one place: the single writer, raw upserts and quarantine, slices, the serving snapshot.

Only Dagster writes ``warehouse.duckdb``; everyone else reads a published, read-only snapshot. Import from
the module you need (``warehouse.writer``, ``warehouse.raw_store``, ``warehouse.slices``,
``warehouse.snapshot``): this package deliberately re-exports nothing, so a reader that imports
``warehouse.snapshot`` never loads the writer's code.
"""
