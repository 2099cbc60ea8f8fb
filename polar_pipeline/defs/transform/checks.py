"""The data tests declared in each model's YAML, as Dagster asset checks evaluated over the run's slice.

One check per declared test, so the UI lists each beside its mart with its last outcome. A check is
evaluated once per run (not per partition), after the slice is committed. ``error`` tests are blocking: the
table itself is wrong (a duplicate grain, a broken invariant), so downstream assets in the run do not
execute. ``warn`` tests report unusual values and halt nothing: a run covers many users, and one person's
odd value must not stop everyone else's partitions (values that cannot be typed are quarantined per record).
Each outcome is also kept per user in ``control.check_failures``, which data health and status read.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg
import duckdb

from polar_pipeline.sqlmodels import DataTest, evaluate_tests
from polar_pipeline.warehouse.check_failures import record_check_outcome
from polar_pipeline.warehouse.schema import CHECK_FAILURES_TABLE
from polar_pipeline.warehouse.slices import UserDaySlice
from polar_pipeline.warehouse.writer import transaction


def check_specs(asset_key: dg.AssetKey, tests: Sequence[DataTest]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            name=test.name,
            asset=asset_key,
            description=f"{test.description} ({'blocking' if test.blocking else 'warns'})",
            blocking=test.blocking,
        )
        for test in tests
    ]


def check_results(
    con: duckdb.DuckDBPyConnection, relation: str, tests: Sequence[DataTest], scope: UserDaySlice
) -> list[dg.AssetCheckResult]:
    """Evaluate every test over the slice just written; failing rows and a sample go into the metadata."""
    results = []
    outcomes = evaluate_tests(con, relation, tests, scope)
    evaluated_at = datetime.now(UTC)
    with transaction(con, CHECK_FAILURES_TABLE):
        for outcome in outcomes:
            record_check_outcome(
                con,
                check_name=f"{relation}:{outcome.test.name}",
                asset=relation,
                blocking=outcome.test.blocking,
                failing_by_user=outcome.failing_by_user,
                user_day_slice=scope,
                evaluated_at=evaluated_at,
            )
    for outcome in outcomes:
        metadata: dict[str, dg.RawMetadataValue] = {
            "failing_rows": outcome.failing,
            "users": len(scope.users),
            "first_day": scope.first_day.isoformat(),
            "last_day": scope.last_day.isoformat(),
        }
        if outcome.failing_by_user:
            metadata["failing_users"] = dg.MetadataValue.json(outcome.failing_by_user)
        if outcome.sample_markdown:
            metadata["sample"] = dg.MetadataValue.md(outcome.sample_markdown)
        results.append(
            dg.AssetCheckResult(
                check_name=outcome.test.name,
                passed=outcome.passed,
                severity=dg.AssetCheckSeverity.ERROR if outcome.test.blocking else dg.AssetCheckSeverity.WARN,
                metadata=metadata,
            )
        )
    return results
