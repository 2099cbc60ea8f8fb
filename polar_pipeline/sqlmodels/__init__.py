"""The SQL models of ``dbt_like_sql/`` as a library: load and validate, run, test and document them.

No Dagster here: ``defs/transform`` turns the graph into assets and checks, and the tests run models directly.
"""

from polar_pipeline.sqlmodels.contracts import ColumnDoc, Contract, DataTest
from polar_pipeline.sqlmodels.graph import ModelGraph, SourceTable, SqlMacro, SqlModel, SqlModelError
from polar_pipeline.sqlmodels.loader import DEFAULT_SQL_DIR, load_macros, load_models
from polar_pipeline.sqlmodels.runner import (
    ModelRun,
    NewRejects,
    TestOutcome,
    create_views,
    evaluate_tests,
    markdown_table,
    quarantine_rejects,
    run_models,
    run_table_model,
    slice_preview,
)

__all__ = [
    "DEFAULT_SQL_DIR",
    "ColumnDoc",
    "Contract",
    "DataTest",
    "ModelGraph",
    "ModelRun",
    "NewRejects",
    "SourceTable",
    "SqlMacro",
    "SqlModel",
    "SqlModelError",
    "TestOutcome",
    "create_views",
    "evaluate_tests",
    "load_macros",
    "load_models",
    "markdown_table",
    "quarantine_rejects",
    "run_models",
    "run_table_model",
    "slice_preview",
]
