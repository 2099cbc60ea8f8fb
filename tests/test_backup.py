"""A backup taken while another process keeps writing is one consistent point, and restores whole.

The source home is a copy of the session's served warehouse (three users, marts, analytics, a snapshot, the
sample store, API keys) with a Dagster home of its own: the users' partitions and a run left "in
progress". A writer process then commits transaction after transaction through ``connect_writer``, each
adding the same number of rows to two tables, while the backup runs. A torn copy (a file copied while a
transaction was half written, or without the commits still in the WAL) shows as two different counts, or as
rows that the source never had at any single moment; a consistent one holds exactly the first ``k``
transactions in both tables. The restored home is compared with the source table by table, and must
verify its keys, decrypt its tokens, list its users in Dagster and serve its snapshot from its own files.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

import polar_pipeline.backup as backup_module
from polar_pipeline.api_keys import ApiKeyStore
from polar_pipeline.backup import (
    BEFORE_RESTORE,
    MANIFEST_NAME,
    WAREHOUSE_PAUSE,
    BackupCorrupt,
    RestoreRefused,
    backup,
    move_contents_aside,
    restore,
)
from polar_pipeline.connections import open_control_store
from polar_pipeline.operations import PID_TAG
from polar_pipeline.orchestration.home import prepare_dagster_home
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.snapshot import SnapshotReader, read_pointer
from polar_pipeline.warehouse.writer import connect_writer
from tests.support.served import Served

ROWS_PER_TABLE = 20_000
WAIT = 120.0
"""Upper bound of every wait for a condition (a broken build fails there instead of hanging)."""
LEDGERS = ("loadtest.ledger_a", "loadtest.ledger_b")
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from polar_pipeline.warehouse.writer import connect_writer, transaction

    warehouse, stop, rows = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    iteration = 0
    while not stop.exists():
        iteration += 1
        con = connect_writer(warehouse)  # like a run's step: the warehouse for one transaction
        try:
            with transaction(con):
                for table in ("loadtest.ledger_a", "loadtest.ledger_b"):
                    con.execute(
                        f"INSERT INTO {table} SELECT ?, i, md5(? || '-' || i) FROM range(?) AS t (i)",
                        [iteration, str(iteration), rows],
                    )
        finally:
            con.close()
        print(iteration, flush=True)
    """
)
HOLDER = textwrap.dedent(
    """
    import sys
    import duckdb

    con = duckdb.connect(sys.argv[1])  # like a DuckDB shell left open on the warehouse
    print("holding", flush=True)
    sys.stdin.readline()
    con.close()
    """
)


def _settings(home: Path, dagster_home: Path) -> Settings:
    return Settings(home=home, DAGSTER_HOME=str(dagster_home))


def _digests(warehouse: Path, *, through_iteration: int | None = None) -> dict[str, str]:
    """SHA-256 of every base table's full contents; the ledgers only through ``through_iteration``."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' ORDER BY ALL"
        ).fetchall()
        digests = {}
        for (table,) in tables:
            where = (
                f" WHERE iteration <= {through_iteration}" if table in LEDGERS and through_iteration else ""
            )
            rows = con.execute(f"SELECT * FROM {table}{where} ORDER BY ALL").fetchall()
            digests[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return digests
    finally:
        con.close()


def _ledger_iterations(warehouse: Path) -> dict[str, tuple[int, int, int]]:
    """Per ledger: (rows, distinct iterations, highest iteration)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            table: tuple(  # type: ignore[misc]
                int(value or 0)
                for value in con.execute(
                    f"SELECT count(*), count(DISTINCT iteration), max(iteration) FROM {table}"
                ).fetchall()[0]
            )
            for table in LEDGERS
        }
    finally:
        con.close()


def _snapshot_rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    reader = SnapshotReader(settings.snapshots_dir)
    try:
        with reader.cursor() as (cursor, _):
            return cursor.execute(sql).fetchall()
    finally:
        reader.close()


@pytest.fixture
def source(served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A private copy of the served home, a Dagster home beside it with the users and a run in progress."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "source-dagster"))  # undone after the test
    settings = _settings(tmp_path / "source-home", tmp_path / "source-dagster")
    shutil.copytree(served.settings.home_dir, settings.home_dir)
    prepare_dagster_home(settings)
    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    try:
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, served.users)
        instance.add_run(
            dg.DagsterRun(
                job_name="pipeline_job",
                run_id="0123abcd-0000-4000-8000-000000000000",
                status=dg.DagsterRunStatus.STARTED,
                tags={PID_TAG: "999999"},
            )
        )
    finally:
        instance.dispose()
    con = connect_writer(settings.warehouse_path)
    try:
        con.execute("CREATE SCHEMA loadtest")
        for table in LEDGERS:
            con.execute(f"CREATE TABLE {table} (iteration INTEGER, i BIGINT, digest VARCHAR)")
    finally:
        con.close()
    return settings


class WriterProcess:
    """The writer: its commits (stdout, one iteration number a line) and its waits (stderr), as they come."""

    def __init__(self, warehouse: Path, stop: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(warehouse), str(stop), str(ROWS_PER_TABLE)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.commits: list[int] = []
        self.waits: list[str] = []
        self.ended = False
        self.changed = threading.Condition()
        threading.Thread(
            target=self._read, args=(self.process.stdout, self.commits, int), daemon=True
        ).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self.waits, str), daemon=True).start()

    def _read(self, stream: Any, lines: list[Any], parse: Any) -> None:
        for line in stream:
            with self.changed:
                lines.append(parse(line.strip()))
                self.changed.notify_all()
        with self.changed:
            self.ended = True
            self.changed.notify_all()

    def wait_until(self, condition: Any) -> None:
        """Until ``condition()`` holds; fails if the writer ends or WAIT seconds pass first."""
        with self.changed:
            assert self.changed.wait_for(lambda: condition() or self.ended, timeout=WAIT), "writer too slow"
            assert condition(), f"the writer ended: {self.waits[-3:]}"


def test_a_backup_during_writes_restores_one_consistent_point(
    source: Settings, served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = tmp_path / "stop-writing"
    writer = WriterProcess(source.warehouse_path, stop)
    seen_while_copying: dict[str, Any] = {}
    waits_before = 0  # the writer's stderr lines before the backup started

    def in_the_middle_of_the_copy(name: str) -> None:
        """Half the warehouse copied: the writer must now be waiting for it, not committing."""
        assert name == WAREHOUSE_PAUSE
        commits, waits = len(writer.commits), len(writer.waits)
        writer.wait_until(
            lambda: (
                any("locked by another process" in line for line in writer.waits[waits_before:])
                or len(writer.commits) >= commits + 3
            )
        )
        seen_while_copying.update(commits=writer.commits[commits:], waits=writer.waits[waits:])

    monkeypatch.setattr(backup_module, "pause_point", in_the_middle_of_the_copy)
    try:
        writer.wait_until(lambda: len(writer.commits) >= 2)  # well under way before the backup starts
        waits_before = len(writer.waits)
        report = backup(source, tmp_path / "backup")
        # Which transactions did the backup catch? Read them from the backup's own warehouse file.
        caught = _ledger_iterations(report.target / "home" / "warehouse.duckdb")
        k = caught[LEDGERS[0]][2]
        writer.wait_until(lambda: max(writer.commits) > k)  # and it went on committing afterwards
    finally:
        stop.touch()
        writer.process.wait(timeout=WAIT)
    assert writer.process.returncode == 0
    assert seen_while_copying["commits"] == [], "the writer committed while the warehouse was being copied"

    # One consistent point: both ledgers hold exactly transactions 1..k, whole.
    assert k >= 2
    assert caught == {table: (k * ROWS_PER_TABLE, k, k) for table in LEDGERS}
    assert report.warehouse_hold_seconds < 30
    assert "included" in report.key

    home = tmp_path / "restored"
    home.mkdir()
    (home / "something-already-here").write_text("kept\n")
    target = _settings(home, home / "dagster")
    restored = restore(target, report.target)

    # The previous content went beside the home, whole; nothing of it was deleted.
    (aside,) = restored.moved_aside
    assert aside.name.startswith(f"restored.{BEFORE_RESTORE}-")
    assert (aside / "something-already-here").read_text() == "kept\n"

    # Every table equals the source at the backup's point (the ledgers through transaction k).
    assert _digests(target.warehouse_path) == _digests(source.warehouse_path, through_iteration=k)
    assert _ledger_iterations(target.warehouse_path) == caught

    # The control store: the keys still verify, the tokens still decrypt (the key came along).
    keys = ApiKeyStore(target.control_store_path)
    assert keys.verify(served.admin_key) is not None
    for user in served.users:
        found = keys.verify(served.user_keys[user])
        assert found is not None and found.user_id == user
        assert open_control_store(target).token_for(user) == open_control_store(source).token_for(user)

    # Dagster: the users are there; the run caught "in progress" is failed, so it holds no pool slot.
    instance = dg.DagsterInstance.from_config(str(target.dagster_home))
    try:
        assert instance.get_dynamic_partitions(USERS_PARTITIONS_NAME) == served.users
        run = instance.get_run_by_id("0123abcd-0000-4000-8000-000000000000")
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
    finally:
        instance.dispose()
    assert restored.runs_marked_failed == ("0123abcd-0000-4000-8000-000000000000",)

    # The snapshot serves the same rows, its sample views reading the restored sample store.
    source_pointer = read_pointer(source.snapshots_dir)
    assert source_pointer is not None and restored.republished == source_pointer.generation + 1
    for sql in (
        "SELECT count(*), count(DISTINCT user_id) FROM marts.daily_metrics",
        "SELECT count(*), sum(len(sample_values)) FROM samples.sleep_series",
    ):
        assert _snapshot_rows(target, sql) == _snapshot_rows(source, sql)
    view_sql = " ".join(
        row[0]
        for row in _snapshot_rows(target, "SELECT sql FROM duckdb_views() WHERE schema_name = 'samples'")
    )
    assert str(target.samples_dir) in view_sql and str(source.samples_dir) not in view_sql


def test_restore_refuses_a_changed_byte_and_a_home_in_use(source: Settings, tmp_path: Path) -> None:
    report = backup(source, tmp_path / "backup")
    manifest = (report.target / MANIFEST_NAME).read_text()
    assert '"home/secret.key"' in manifest and '"dagster/dagster.yaml"' in manifest

    corrupt = tmp_path / "corrupt"
    shutil.copytree(report.target, corrupt)
    victim = corrupt / "home" / "control.sqlite3"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    fresh = _settings(tmp_path / "fresh", tmp_path / "fresh" / "dagster")
    with pytest.raises(BackupCorrupt, match=r"home/control\.sqlite3") as refused:
        restore(fresh, corrupt)
    assert refused.value.problems == [
        "home/control.sqlite3: its SHA-256 differs from the manifest's (the file changed)"
    ]
    assert not fresh.home_dir.exists()

    before = sorted(path.relative_to(source.home_dir) for path in source.home_dir.rglob("*"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(source.warehouse_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(RestoreRefused, match=rf"is open in .*\(PID {holder.pid}\)"):
            restore(source, report.target)
    finally:
        holder.communicate("\n", timeout=60)
    # Released, the warehouse is free, but the source's Dagster has a run in progress.
    with pytest.raises(RestoreRefused, match=r"runs are in progress .*0123abcd"):
        restore(source, report.target)
    assert sorted(path.relative_to(source.home_dir) for path in source.home_dir.rglob("*")) == before
    assert not list(tmp_path.glob(f"*{BEFORE_RESTORE}*"))


def test_a_mount_point_keeps_its_previous_content_inside(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "serving").mkdir(parents=True)
    (home / "warehouse.duckdb").write_bytes(b"old")
    (home / "serving" / "CURRENT.json").write_text("{}")
    aside = move_contents_aside(home, "20260301T000000Z")
    assert aside == home / f"{BEFORE_RESTORE}-20260301T000000Z"
    assert sorted(path.name for path in home.iterdir()) == [aside.name]
    assert (aside / "warehouse.duckdb").read_bytes() == b"old"
    assert (aside / "serving" / "CURRENT.json").read_text() == "{}"
