"""Bring a POLAR_HOME written by an earlier version to the current layout, on first use, losing nothing.

What changed since layout 1 (the first release):

* the day axis starts at ``history-start`` (recorded once: the first day with data) instead of 2020-01-01;
* derived tables whose columns changed (``marts.daily_metrics`` gained the night's start, end and heart
  rate in layout 2, the columns from sleep, activity, continuous heart rate and cardio load in layout 3, and
  ``marts.exercises`` the export session a workout absorbed, ``export_exercise_id``, in layout 4)
  are rebuilt from raw for every user and day they cover; raw tables are never touched (missing ones, such
  as ``raw.continuous_heart_rate`` and ``raw.cardio_load`` of layout 3, are created empty);
* per-sample series live in the sample store, which the next publish fills from raw (nothing to do here).

``migrate_home`` is idempotent and cheap once done: ``layout-version`` under POLAR_HOME says which layout the
home has, and only an older home opens the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from polar_pipeline.history import history_start
from polar_pipeline.settings import Settings
from polar_pipeline.sqlmodels import DEFAULT_SQL_DIR, ModelGraph, load_models, run_models
from polar_pipeline.sqlmodels.catalog import describe_relations
from polar_pipeline.warehouse.schema import ensure_raw_schema, raw_extent
from polar_pipeline.warehouse.slices import existing_columns
from polar_pipeline.warehouse.writer import connect_writer

LAYOUT_VERSION = 4
VERSION_FILE = "layout-version"


@dataclass(frozen=True)
class Migration:
    """What ``migrate_home`` did."""

    from_version: int
    history_start: date | None = None
    rebuilt: tuple[str, ...] = field(default=())
    users: tuple[str, ...] = field(default=())


def layout_version(settings: Settings) -> int:
    """The home's layout: the recorded version, 1 for a home with a warehouse but no record, else current."""
    path = settings.home_dir / VERSION_FILE
    if path.exists():
        return int(path.read_text().strip())
    return 1 if settings.warehouse_path.exists() else LAYOUT_VERSION


def migrate_home(settings: Settings, graph: ModelGraph | None = None) -> Migration:
    """Migrate the home to ``LAYOUT_VERSION`` if it is older; record the version either way."""
    version = layout_version(settings)
    if version >= LAYOUT_VERSION:
        _record(settings)
        return Migration(from_version=version)
    start = history_start(settings)  # fixed from the data before anything else opens the warehouse
    graph = graph or load_models(settings.sql_dir or DEFAULT_SQL_DIR)
    expected = describe_relations(graph)
    con = connect_writer(settings.warehouse_path)
    try:
        ensure_raw_schema(con)  # the views of this version read every raw table it knows
        stale = [
            model.name
            for model in graph.tables
            if existing_columns(con, model.relation) not in (None, expected[model.relation])
        ]
        users: tuple[str, ...] = ()
        if stale:
            users, first, last = raw_extent(con)
            for name in stale:
                con.execute(f"DROP TABLE {graph[name].relation}")
            if users and first is not None and last is not None:
                run_models(con, graph, users, first, last, names=stale)
    finally:
        con.close()
    _record(settings)
    return Migration(from_version=version, history_start=start, rebuilt=tuple(stale), users=users)


def _record(settings: Settings) -> None:
    path = settings.home_dir / VERSION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text().strip() != str(LAYOUT_VERSION):
        path.write_text(f"{LAYOUT_VERSION}\n")
