"""Deleting a user leaves nothing of theirs, and everything of everybody else.

Two simulated users are synced together (one run, as ``polar-flow sync`` does) and published, each with
an API key that has been used (a rate-limit counter) and a sync request. After deleting one, every place
is searched for them by value, not by where the code deletes: every text column of every table of the
warehouse and of every serving generation on disk, every text column of every Parquet segment, every text
column of every table of the two SQLite files, Dagster's partitions, materializations and runs, and the
simulator's own list of registered users. The other user's counts in the same places are unchanged.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from polar_api.ratelimit import RateLimiter
from polar_pipeline.api_keys import ApiKeyStore
from polar_pipeline.connections import open_control_store
from polar_pipeline.operations import publish, sync
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME
from polar_pipeline.sync_requests import SyncRequestQueue
from polar_pipeline.user_deletion import DeregistrationFailed, confirmation_prompt, delete_user
from polar_pipeline.warehouse.snapshot import GENERATION_PATTERN, SnapshotReader, read_pointer
from tests.conftest import Pipeline

DAYS = 2
TEXT_TYPES = ("VARCHAR", "JSON")


def _duckdb_text_hits(con: duckdb.DuckDBPyConnection, needles: list[str], prefix: str) -> Counter[str]:
    """``prefix:schema.table.column`` -> rows whose text column equals a needle (views: ``prefix-view``)."""
    hits: Counter[str] = Counter()
    columns = con.execute(
        "SELECT table_schema, table_name, column_name, table_type FROM information_schema.columns "
        "JOIN information_schema.tables USING (table_catalog, table_schema, table_name) "
        "WHERE table_catalog = current_database() AND data_type IN ? ORDER BY ALL",
        [list(TEXT_TYPES)],
    ).fetchall()
    for schema, table, column, table_type in columns:
        (count,) = con.execute(
            f'SELECT count(*) FROM "{schema}"."{table}" WHERE CAST("{column}" AS VARCHAR) IN ?', [needles]
        ).fetchall()[0]
        if count:
            kind = prefix if table_type == "BASE TABLE" else f"{prefix}-view"
            hits[f"{kind}:{schema}.{table}.{column}"] = int(count)
    return hits


def _sqlite_text_hits(path: Path, needles: list[str], prefix: str) -> Counter[str]:
    """``prefix:table.column`` -> rows holding a needle as text, for every table and column of the file."""
    hits: Counter[str] = Counter()
    con = sqlite3.connect(path)
    try:
        tables = [name for (name,) in con.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")]
        for table in tables:
            for column in [str(row[1]) for row in con.execute(f'PRAGMA table_info("{table}")')]:
                marks = ", ".join("?" * len(needles))
                (count,) = con.execute(
                    f'SELECT count(*) FROM "{table}" WHERE typeof("{column}") = \'text\' '
                    f'AND "{column}" IN ({marks})',
                    needles,
                ).fetchone()
                if count:
                    hits[f"{prefix}:{table}.{column}"] = int(count)
    finally:
        con.close()
    return hits


def footprint(pipeline: Pipeline, user_id: str, needles: list[str], *, all_generations: bool) -> Counter[str]:
    """Everywhere under POLAR_HOME and in Dagster that holds one of ``needles`` (their id, key, request)."""
    settings = pipeline.settings
    hits: Counter[str] = Counter()
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        hits += _duckdb_text_hits(con, needles, "warehouse")
    finally:
        con.close()
    current = read_pointer(settings.snapshots_dir)
    assert current is not None
    generations = sorted(
        entry for entry in settings.snapshots_dir.iterdir() if GENERATION_PATTERN.match(entry.name)
    )
    for path in generations if all_generations else [current.path]:
        con = duckdb.connect(str(path), read_only=True)
        try:
            hits += _duckdb_text_hits(con, needles, "snapshot" if path == current.path else path.name)
        finally:
            con.close()
    con = duckdb.connect()
    try:
        for segment in sorted(settings.samples_dir.rglob("*.parquet")):
            source = f"read_parquet('{segment}')"
            for column, column_type, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall():
                if column_type in TEXT_TYPES:
                    (count,) = con.execute(
                        f'SELECT count(*) FROM {source} WHERE "{column}" IN ?', [needles]
                    ).fetchall()[0]
                    if count:
                        relative = segment.relative_to(settings.samples_dir)
                        hits[f"samples:{relative}.{column}"] = int(count)
    finally:
        con.close()
    hits += _sqlite_text_hits(settings.control_store_path, needles, "control")
    hits += _sqlite_text_hits(settings.rate_limit_path, needles, "ratelimit")
    instance = pipeline.instance
    if user_id in instance.get_dynamic_partitions(USERS_PARTITIONS_NAME):
        hits["dagster:users partition"] = 1
    for asset_key in instance.get_asset_keys():
        theirs = [key for key in instance.get_materialized_partitions(asset_key) if user_id in key.split("|")]
        if theirs:
            hits[f"dagster:materialized {asset_key.to_user_string()}"] = len(theirs)
    tagged = [
        record.dagster_run.run_id
        for record in instance.get_run_records()
        if any(user_id in value.split("|") for value in record.dagster_run.tags.values())
    ]
    if tagged:
        hits["dagster:runs tagged"] = len(tagged)
    return hits


def test_a_deleted_user_is_nowhere_and_the_other_user_is_untouched(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    gone, kept = pipeline.add_users(2)
    assert sync(settings, days=DAYS, instance=pipeline.instance).success  # one run for both users
    assert publish(settings, instance=pipeline.instance)  # generation 1 holds both users
    keys = {user: ApiKeyStore(settings.control_store_path).create(user) for user in (gone, kept)}
    requests = {user: SyncRequestQueue(settings.control_store_path).enqueue(user, "sync", 3) for user in keys}
    limiter = RateLimiter(settings.rate_limit_path)
    for created in keys.values():
        limiter.hit(created.key.key_id, 100)
    limiter.close()

    def needles(user: str) -> list[str]:
        return [user, keys[user].key.key_id, requests[user].request.request_id]

    gone_before = footprint(pipeline, gone, needles(gone), all_generations=True)
    kept_before = footprint(pipeline, kept, needles(kept), all_generations=False)
    # The search can find each place: before the deletion, every kind of place holds the user.
    places = {hit.partition(":")[0] for hit in gone_before}
    assert {"warehouse", "snapshot", "samples", "control", "ratelimit", "dagster"} <= places, places
    assert "dagster:users partition" in gone_before and "dagster:runs tagged" in gone_before

    prompt = confirmation_prompt(settings, gone)
    assert f"Polar user {gone}" in prompt and "1 API key(s), 1 sync request(s)" in prompt

    # A reader in the middle of a request keeps the generation it holds, as across any publish.
    reader = SnapshotReader(settings.snapshots_dir)
    with reader.cursor() as (cursor, held):
        report = delete_user(settings, gone, instance=pipeline.instance)
        still = cursor.execute(
            "SELECT count(*) FROM marts.daily_metrics WHERE user_id = ?", [gone]
        ).fetchall()
        assert held.generation == 1 and still == [(DAYS,)]
    with reader.cursor() as (cursor, now):
        assert now.generation == 2
        assert cursor.execute(
            "SELECT count(*) FROM marts.daily_metrics WHERE user_id = ?", [gone]
        ).fetchall() == [(0,)]
    reader.close()

    assert footprint(pipeline, gone, needles(gone), all_generations=True) == Counter()
    kept_after = footprint(pipeline, kept, needles(kept), all_generations=False)
    dagster_history = {
        hit for hit in kept_before if hit.startswith("dagster:") and hit != "dagster:users partition"
    }
    # The shared run went with its history (Dagster cannot delete one user's part of a run); data stays.
    assert {hit: n for hit, n in kept_after.items()} == {
        hit: n for hit, n in kept_before.items() if hit not in dagster_history
    }
    assert "dagster:users partition" in kept_after
    assert ApiKeyStore(settings.control_store_path).verify(keys[kept].secret) is not None
    assert ApiKeyStore(settings.control_store_path).verify(keys[gone].secret) is None
    assert [user.user_id for user in open_control_store(settings).list_users()] == [kept]

    registered = {str(user["x_user_id"]): user["registered"] for user in pipeline.sim("GET", "/sim/users")}
    assert registered[gone] is False and registered[kept] is True

    # The report's counts are the rows the search found in the warehouse before.
    warehouse_user_rows = sum(
        n for hit, n in gone_before.items() if hit.startswith("warehouse:") and hit.endswith(".user_id")
    )
    assert sum(report.warehouse_rows.values()) == warehouse_user_rows
    assert sum(report.sample_rows.values()) == sum(
        n for hit, n in gone_before.items() if hit.startswith("samples:") and hit.endswith(".user_id")
    )
    assert report.partition_deleted and report.shared_runs_deleted == report.runs_deleted
    assert report.published_generation == 2 and report.generations_removed == (1,)
    assert report.control_rows["users"] == 1 and report.control_rows["api_keys"] == 1
    assert report.rate_limit_rows["request_counts"] == 1
    assert "de-registered" in report.accesslink and gone in report.describe()


def test_an_unreachable_accesslink_stops_before_anything_is_deleted(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pipeline.settings
    (user,) = pipeline.add_users(1)
    key = ApiKeyStore(settings.control_store_path).create(user)
    # Nothing listens on port 9 of the loopback: every request fails to connect.
    unreachable = settings.model_copy(update={"accesslink_url": "http://127.0.0.1:9"})

    with pytest.raises(DeregistrationFailed, match="Nothing was deleted"):
        delete_user(unreachable, user, instance=pipeline.instance)

    assert open_control_store(settings).get_user(user).user_id == user
    assert ApiKeyStore(settings.control_store_path).verify(key.secret) is not None
    assert user in pipeline.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)
    assert {str(u["x_user_id"]): u["registered"] for u in pipeline.sim("GET", "/sim/users")}[user] is True
