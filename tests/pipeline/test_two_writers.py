"""Two writers at once, as separate `polar-flow` processes: both finish, a waiting one says so, nothing lost.

The first process is held inside a write transaction: the crash-test seam pauses it just before
``commit:raw.sleep`` and announces it, and the test then stops it (SIGSTOP) so that it stays there, holding
the warehouse and the ``duckdb`` pool slot, until the second process is seen waiting; SIGCONT lets it go
on. Every wait is for a condition (a line on stderr, a pending claim in the Dagster instance), never a
fixed time. The result is compared with a serial run of the same work in a fresh home: every raw and mart
table (and for a publish, the final snapshot), bookkeeping timestamps left out since they differ per run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from polar_pipeline.operations import PID_TAG, add_user, publish, sync
from polar_pipeline.orchestration.home import dagster_instance
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME
from polar_pipeline.orchestration.resources import DUCKDB_POOL
from polar_pipeline.settings import Settings, simulator_environment
from polar_pipeline.warehouse.snapshot import read_pointer
from polar_pipeline.warehouse.writer import connect_writer
from tests.conftest import Pipeline

POLAR_FLOW = str(Path(sys.executable).parent / "polar-flow")
REPO = Path(__file__).resolve().parents[2]
WAIT = 120.0
"""Upper bound of every wait for a condition (a broken build fails there instead of hanging)."""
BOOKKEEPING = {"fetched_at", "first_seen_at", "seen_at", "through_fetched_at", "segment"} | {
    "evaluated_at", "last_new_data_at", "last_sync_at", "last_attempt_at", "hours_without_new_data",
}  # fmt: skip
"""When a row was fetched or seen, and the sample segment named after it, and when analytics.data_health was
evaluated and what it says about those times: differ between any two runs."""
DAYS = "7"

Digests = dict[str, str]


@dataclass
class Writer:
    """A `polar-flow` process, its stderr read line by line as it comes."""

    name: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    stdout: str = ""
    changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.lines.append("")  # end of stream
            self.changed.notify_all()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        self.stdout = self.process.stdout.read()

    def wait_for(self, text: str) -> str:
        """The first stderr line containing ``text``; fails if the process ends or WAIT passes first."""
        deadline = time.monotonic() + WAIT
        with self.changed:
            while True:
                found = [line for line in self.lines if text in line]
                if found:
                    return found[0]
                ended = self.lines and self.lines[-1] == "" and self.process.poll() is not None
                if ended or time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} never said {text!r}; its stderr ends:\n" + self.tail())
                self.changed.wait(timeout=0.5)

    def said(self, text: str) -> list[str]:
        with self.changed:
            return [line for line in self.lines if text in line]

    def tail(self) -> str:
        with self.changed:
            return "\n".join(self.lines[-30:])

    def finish(self) -> int:
        code = self.process.wait(timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while not (self.lines and self.lines[-1] == "") and time.monotonic() < deadline:
            with self.changed:
                self.changed.wait(timeout=0.5)
        return code


@contextmanager
def writers(pipeline: Pipeline) -> Iterator[Callable[..., Writer]]:
    """Start `polar-flow` processes on the pipeline's home; whatever still runs at the end is killed."""
    pipeline.instance.dispose()  # the CLI processes open the Dagster storage themselves
    started: list[Writer] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> Writer:
        process = subprocess.Popen(
            [POLAR_FLOW, *args], env=os.environ | pipeline.env | (env or {}), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        started.append(Writer(name, process))
        return started[-1]

    try:
        yield start
    finally:
        for writer in started:
            if writer.process.poll() is None:
                os.killpg(writer.process.pid, signal.SIGCONT)
                os.killpg(writer.process.pid, signal.SIGKILL)
                writer.process.wait(timeout=30)


def hold_in_raw_sleep_commit(start: Callable[..., Writer], *args: str) -> Writer:
    """Start a sync that stops inside its raw.sleep write transaction (lock and pool slot held) and stays."""
    first = start(
        "the first sync", *args,
        env={"POLAR_DEBUG_PAUSE_AT": "commit:raw.sleep", "POLAR_DEBUG_PAUSE_SECONDS": "5"},
    )  # fmt: skip
    first.wait_for("polar-flow: paused at commit:raw.sleep")
    os.kill(first.process.pid, signal.SIGSTOP)  # well inside the 5 s pause: it stays there until SIGCONT
    return first


def resume_and_finish(holder: Writer, waiter: Writer) -> None:
    """Let the stopped holder go on (SIGCONT); both must then finish cleanly."""
    os.kill(holder.process.pid, signal.SIGCONT)
    assert holder.finish() == 0, holder.tail()
    assert waiter.finish() == 0, waiter.tail()


def seen_waiting(holder: Writer, waiter: Writer, instance: dg.DagsterInstance) -> str:
    """How ``waiter`` waits for ``holder`` (stopped inside its transaction): ``"lock"`` once it says the
    warehouse is locked by the holder's process, ``"pool"`` once one of its steps is pending for the
    ``duckdb`` slot that the holder's run has claimed."""
    pid = holder.process.pid
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if any(f"(PID {pid})" in line for line in waiter.said("is locked by another process")):
            return "lock"
        info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
        holders = {slot.run_id for slot in info.claimed_slots}
        holder_runs = {
            run.run_id for run in instance.get_runs(filters=dg.RunsFilter(tags={PID_TAG: str(pid)}))
        }
        pending = {step.run_id for step in info.pending_steps if step.assigned_timestamp is None}
        if holders and holders <= holder_runs and pending - holder_runs:
            return "pool"
        if waiter.process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(
        f"{waiter.name} was never seen waiting for pid {pid}; its stderr ends:\n{waiter.tail()}"
    )


def table_digests(database: Path, *, views: bool) -> Digests:
    """A digest of every table (and with ``views``, every view) in ``database``, bookkeeping left out."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        columns: dict[str, list[str]] = {}
        for schema, table, column in con.execute(
            "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns AS c "
            "JOIN information_schema.tables AS t USING (table_catalog, table_schema, table_name) "
            "WHERE t.table_catalog = current_database() AND ($views OR t.table_type = 'BASE TABLE') "
            "ORDER BY c.table_schema, c.table_name, c.ordinal_position",
            {"views": views},
        ).fetchall():
            columns.setdefault(f'"{schema}"."{table}"', []).append(column)
        digests = {}
        for relation, names in columns.items():
            if relation == '"raw"."sample_segments"':
                # Which publish extracted a series differs; how many series rows each kind has may not.
                query = f"SELECT kind, sum(rows) FROM {relation} GROUP BY kind ORDER BY ALL"
            else:
                kept = ", ".join(f'"{name}"' for name in names if name not in BOOKKEEPING)
                query = f"SELECT {kept} FROM {relation} ORDER BY ALL"
            rows = con.execute(query).fetchall()
            digests[relation] = f"{len(rows)} rows " + hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
        return digests
    finally:
        con.close()


def home_digests(settings: Settings, *, snapshot: bool) -> Digests:
    """Every table of the warehouse, and with ``snapshot`` every relation the current snapshot serves."""
    digests = table_digests(settings.warehouse_path, views=False)
    if snapshot:
        info = read_pointer(settings.snapshots_dir)
        assert info is not None
        served = table_digests(info.path, views=True)
        digests |= {f"snapshot {relation}": digest for relation, digest in served.items()}
    return digests


@contextmanager
def other_dagster_home(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, dagster_home: Path
) -> Iterator[dg.DagsterInstance]:
    """A Dagster instance on another DAGSTER_HOME for the same POLAR_HOME (this process's environment points
    there meanwhile)."""
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    try:
        instance = dagster_instance(Settings())
        try:
            yield instance
        finally:
            instance.dispose()
    finally:
        monkeypatch.setenv("DAGSTER_HOME", pipeline.env["DAGSTER_HOME"])


@dataclass
class SerialRun:
    """The same work, one step after the other, in a fresh home, in a process of its own (``serial_main``).

    It runs while the test drives the concurrent writers, so it costs the test little time.
    """

    process: subprocess.Popen[str]
    dagster_home: Path

    @classmethod
    def start(cls, pipeline: Pipeline, tmp_path: Path, users: list[str], steps: list[list[str]]) -> SerialRun:
        shm = Path("/dev/shm")
        dagster_home = (shm if shm.is_dir() else tmp_path) / f"dagster-serial-{os.getpid()}-{tmp_path.name}"
        env = os.environ | simulator_environment(pipeline.sim_url, tmp_path / "serial-home", dagster_home)
        tokens = {str(user["x_user_id"]): str(user["access_token"]) for user in pipeline.users}
        work = json.dumps({"users": [[user, tokens[user]] for user in users], "steps": steps})
        code = "from tests.pipeline.test_two_writers import serial_main; serial_main()"
        process = subprocess.Popen(
            [sys.executable, "-c", code, work], cwd=REPO, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        return cls(process, dagster_home)

    def digests(self) -> Digests:
        try:
            out, err = self.process.communicate(timeout=WAIT)
        finally:
            shutil.rmtree(self.dagster_home, ignore_errors=True)
        assert self.process.returncode == 0, err[-3000:]
        digests: Digests = json.loads(out.strip().splitlines()[-1])
        return digests

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=30)
        shutil.rmtree(self.dagster_home, ignore_errors=True)


def serial_main() -> None:
    """The serial run's process: add the users, run the steps (``["sync", user…]``, ``["publish"]``) in
    order, print the digests as one JSON line."""
    work = json.loads(sys.argv[1])
    settings = Settings()
    instance = dagster_instance(settings)
    for user, token in work["users"]:
        add_user(settings, user, token, instance=instance)
    for kind, *users in work["steps"]:
        if kind == "sync":
            assert sync(settings, users, days=int(DAYS), instance=instance).success
        else:
            assert publish(settings, instance=instance)
    instance.dispose()
    print(json.dumps(home_digests(settings, snapshot=settings.snapshots_dir.exists())))


def user_args(users: list[str]) -> list[str]:
    return [arg for user in users for arg in ("--user", user)]


def test_a_publish_during_a_sync_waits_its_turn_and_nothing_is_lost(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    (user,) = pipeline.add_users(1)
    serial = SerialRun.start(pipeline, tmp_path, [user], [["sync", user], ["publish"], ["publish"]])
    try:
        with writers(pipeline) as start:
            first = hold_in_raw_sleep_commit(start, "sync", "--user", user, "--days", DAYS)
            second = start("the publish", "publish")
            said = second.wait_for("polar-flow: another run is writing the warehouse")
            assert f"pid {first.process.pid}" in said and "wait their turn" in said, said
            # Every publish write happens in its pooled step (the time zones too), so it waits for the pool.
            assert seen_waiting(first, second, pipeline.instance) == "pool"
            resume_and_finish(first, second)
        expected = serial.digests()
    finally:
        serial.stop()
    assert "success" in first.stdout and "published serving snapshot" in first.stdout, first.stdout
    assert not first.said("Traceback") and not second.said("Traceback")

    pointer = read_pointer(pipeline.settings.snapshots_dir)
    assert pointer is not None and pointer.generation == 2  # the publish's and the sync's own
    assert home_digests(pipeline.settings, snapshot=True) == expected
    compared = {key.split(".")[0] for key in expected}
    assert {'"raw"', '"marts"', 'snapshot "marts"', 'snapshot "raw"', 'snapshot "samples"'} <= compared


def test_two_syncs_at_once_take_turns_and_nothing_is_lost(pipeline: Pipeline, tmp_path: Path) -> None:
    users = pipeline.add_users(3)
    serial = SerialRun.start(pipeline, tmp_path, users, [["sync", *users[:2]], ["sync", *users[1:]]])
    try:
        with writers(pipeline) as start:
            first = hold_in_raw_sleep_commit(
                start, "sync", *user_args(users[:2]), "--days", DAYS, "--no-publish"
            )
            second = start("the second sync", "sync", *user_args(users[1:]), "--days", DAYS, "--no-publish")
            said = second.wait_for("polar-flow: another run is writing the warehouse")
            assert f"pid {first.process.pid}" in said, said
            assert seen_waiting(first, second, pipeline.instance) == "pool"  # no write outside the pool
            resume_and_finish(first, second)
        expected = serial.digests()
    finally:
        serial.stop()
    assert "success" in first.stdout and "success" in second.stdout, (first.stdout, second.stdout)

    assert home_digests(pipeline.settings, snapshot=False) == expected
    days = dict(pipeline.query("SELECT user_id, count(*) FROM marts.daily_metrics GROUP BY ALL"))
    assert days == dict.fromkeys(users, int(DAYS))


def test_two_syncs_from_two_dagster_homes_wait_on_the_warehouse_lock_and_say_so(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No shared pool (e.g. `dagster dev` started by hand on another DAGSTER_HOME): DuckDB's lock decides."""
    users = pipeline.add_users(3)
    shm = Path("/dev/shm")
    elsewhere = (shm if shm.is_dir() else tmp_path) / f"dagster-other-{os.getpid()}-{tmp_path.name}"
    serial = SerialRun.start(pipeline, tmp_path, users, [["sync", *users[:2]], ["sync", *users[1:]]])
    try:
        with other_dagster_home(pipeline, monkeypatch, elsewhere) as instance:
            instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, users)
        with writers(pipeline) as start:
            first = hold_in_raw_sleep_commit(
                start, "sync", *user_args(users[:2]), "--days", DAYS, "--no-publish"
            )
            second = start(
                "the second sync", "sync", *user_args(users[1:]), "--days", DAYS, "--no-publish",
                env={"DAGSTER_HOME": str(elsewhere)},
            )  # fmt: skip
            said = second.wait_for("polar-flow: the warehouse")
            warehouse = pipeline.settings.warehouse_path
            assert said.startswith(f"polar-flow: the warehouse {warehouse} is locked by another process: ")
            assert f"(PID {first.process.pid})" in said and said.endswith("; waiting up to 120 s"), said
            assert not second.said("another run is writing")  # two instances: neither knows the other

            # Waiting has a limit, and giving up is said too (here after 0.2 s, the first still holding it).
            with pytest.raises(duckdb.IOException, match="lock"):
                connect_writer(warehouse, retry_seconds=0.2)
            gave_up = capsys.readouterr().err.strip().splitlines()[-1]
            assert gave_up.startswith(f"polar-flow: gave up after 0.2 s: the warehouse {warehouse} is locked")
            assert f"(PID {first.process.pid})" in gave_up, gave_up

            resume_and_finish(first, second)
        expected = serial.digests()
    finally:
        serial.stop()
        shutil.rmtree(elsewhere, ignore_errors=True)
    assert second.said("polar-flow: got the warehouse after waiting"), second.tail()
    assert "success" in first.stdout and "success" in second.stdout, (first.stdout, second.stdout)
    assert home_digests(pipeline.settings, snapshot=False) == expected
