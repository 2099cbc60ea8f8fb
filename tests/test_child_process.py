"""``run_in_child``: a call in a fresh interpreter, its answer or its error back; and the import's parent
process, which must not load the heavy libraries its children use."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import date

import pytest

from polar_pipeline.child_process import run_in_child
from polar_pipeline.polar_export.summary import ImportSummary
from polar_pipeline.warehouse.raw_counts import StoredCounts


class Unpicklable(Exception):
    """An error whose instances cannot be pickled (it holds a lambda)."""

    def __init__(self) -> None:
        super().__init__("holds a lambda")
        self.callback = lambda: None


def child_pid_and_sum(*numbers: int, start: int = 0) -> tuple[int, int]:
    return os.getpid(), start + sum(numbers)


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def raise_unpicklable() -> None:
    raise Unpicklable()


def die_without_answer() -> None:
    os._exit(3)


def a_summary() -> ImportSummary:
    return ImportSummary({"sleep": StoredCounts(2, 1, 0, 1)}, {"profile": 1}, frozenset({date(2026, 1, 2)}))


def test_the_call_runs_in_another_process_and_its_result_comes_back() -> None:
    pid, total = run_in_child(child_pid_and_sum, 1, 2, 3, start=10)
    assert total == 16
    assert pid != os.getpid()


def test_an_error_in_the_child_is_raised_here_with_the_childs_traceback() -> None:
    with pytest.raises(ValueError, match="not an export") as raised:
        run_in_child(raise_value_error, "not an export")
    notes = "\n".join(getattr(raised.value, "__notes__", []))
    assert "in the child process" in notes and "raise_value_error" in notes


def test_an_error_that_cannot_be_pickled_is_described() -> None:
    with pytest.raises(ChildProcessError, match="Unpicklable: holds a lambda"):
        run_in_child(raise_unpicklable)


def test_a_child_that_dies_without_answering_is_an_error() -> None:
    with pytest.raises(ChildProcessError, match="exited with code 3 without an answer"):
        run_in_child(die_without_answer)


def test_the_import_parent_unpickles_its_childs_answers_without_the_heavy_libraries() -> None:
    """What the import's parent imports and receives: none of Dagster, DuckDB, polars, pyarrow loaded."""
    script = textwrap.dedent(
        """
        import sys
        from polar_pipeline import export_import
        from polar_pipeline.child_process import run_in_child
        from tests.test_child_process import a_summary

        summary = run_in_child(a_summary)
        assert summary.first_day is not None and summary.changed == 1, summary
        heavy = sorted({"dagster", "duckdb", "polars", "pyarrow", "numpy"} & set(sys.modules))
        print(",".join(heavy) or "none")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"


def warn_in_beta() -> int:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter(
            "default"
        )  # what is shown in the child unless the parent's filters say otherwise
        warnings.filters.pop(0)  # back to the child's filters, as the call found them
        warnings.warn("Class `X` is currently in beta", UserWarning, stacklevel=1)
    return len(caught)


def test_the_child_keeps_the_callers_warning_filters() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is currently in beta.*")
        assert run_in_child(warn_in_beta) == 0
    assert run_in_child(warn_in_beta) == 1
